"""FrontDoor: the function URL, an API Gateway REST API that streams, or both; and the alarms."""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import FUNCTION_ID

Doc = dict[str, Any]
API_ID = "RelayApi"
STREAMING_URI = (
    "arn:${AWS::Partition}:apigateway:${AWS::Region}:lambda:path/2021-11-15/functions/"
    "${RelayFunction.Arn}/response-streaming-invocations"
)
URL_RESOURCES = {
    f"{FUNCTION_ID}Url",
    f"{FUNCTION_ID}UrlPublicPermissions",
    f"{FUNCTION_ID}URLInvokeAllowPublicAccess",
}
API_RESOURCES = {API_ID, "RelayApiInvokePermission"}


@pytest.fixture(scope="module")
def api(template: Doc) -> Doc:
    resource = template["Resources"][API_ID]
    assert resource["Type"] == "AWS::Serverless::Api"
    properties: Doc = resource["Properties"]
    return properties


def integrations(api: Doc) -> dict[str, Doc]:
    """The integration of each path's ANY method."""
    return {
        path: item["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]
        for path, item in api["DefinitionBody"]["paths"].items()
    }


def test_front_door_parameter(template: Doc) -> None:
    parameter = template["Parameters"]["FrontDoor"]
    assert parameter["AllowedValues"] == ["FunctionUrl", "ApiGateway", "Both"]
    assert parameter["Default"] == "FunctionUrl"


@pytest.mark.parametrize(
    ("front_door", "url", "api_gateway"),
    [("FunctionUrl", True, False), ("ApiGateway", False, True), ("Both", True, True)],
)
def test_each_front_door_creates_its_resources_and_output(
    stack: Any, front_door: str, url: bool, api_gateway: bool
) -> None:
    deployed = stack(FrontDoor=front_door)
    for name in URL_RESOURCES:
        assert deployed.exists(name) is url, name
    for name in API_RESOURCES:
        assert deployed.exists(name) is api_gateway, name
    assert deployed.exists("FunctionUrl", "Outputs") is url
    assert deployed.exists("ApiUrl", "Outputs") is api_gateway
    # Whatever the door, the function and its environment are the same.
    assert deployed.exists(FUNCTION_ID)


def test_api_is_regional(template: Doc, api: Doc) -> None:
    assert template["Resources"][API_ID]["Condition"] == "UseApiGateway"
    # Edge-optimized endpoints cut a stream after 30 s without a byte; regional after 5 minutes.
    assert api["EndpointConfiguration"] == {"Type": "REGIONAL"}
    assert api["OpenApiVersion"] == api["DefinitionBody"]["openapi"] == "3.0.1"
    assert re.fullmatch(r"[A-Za-z0-9_]+", api["StageName"])


def test_root_and_every_path_stream_from_the_function(api: Doc) -> None:
    found = integrations(api)
    assert set(found) == {"/", "/{proxy+}"}
    for path, integration in found.items():
        assert integration["type"] == "aws_proxy", path
        assert integration["httpMethod"] == "POST", path  # Lambda's Invoke is always a POST
        assert integration["responseTransferMode"] == "STREAM", path
        assert integration["uri"] == {"Fn::Sub": STREAMING_URI}, path
        # The function's Timeout (at most 900 s) ends a stream, not API Gateway.
        assert integration["timeoutInMillis"] == 900_000, path
    proxy = api["DefinitionBody"]["paths"]["/{proxy+}"]["x-amazon-apigateway-any-method"]
    assert proxy["parameters"] == [
        {"name": "proxy", "in": "path", "required": True, "schema": {"type": "string"}}
    ]


def test_api_gateway_answers_no_cors_itself_except_for_its_own_errors(api: Doc) -> None:
    body = api["DefinitionBody"]
    assert "Cors" not in api
    # OPTIONS goes to the function: through ANY, or on /{proxy+} its own method (never guarded).
    for path_item in body["paths"].values():
        methods = set(path_item) - {"x-amazon-apigateway-any-method"}
        assert methods <= {"options"}, "OPTIONS goes to the function"
        for method in methods:
            assert path_item[method]["x-amazon-apigateway-integration"]["type"] == "aws_proxy"
    responses = body["x-amazon-apigateway-gateway-responses"]
    assert set(responses) == {"DEFAULT_4XX", "DEFAULT_5XX"}
    for response in responses.values():
        assert response["responseParameters"] == {
            "gatewayresponse.header.Access-Control-Allow-Origin": "method.request.header.origin",
            "gatewayresponse.header.Vary": "'Origin'",
        }


def test_api_may_invoke_the_function_and_nothing_else_may(template: Doc, stack: Any) -> None:
    permission = template["Resources"]["RelayApiInvokePermission"]
    assert permission["Condition"] == "UseApiGateway"
    properties = permission["Properties"]
    assert properties["Action"] == "lambda:InvokeFunction"  # covers InvokeWithResponseStream
    assert properties["FunctionName"] == {"Ref": FUNCTION_ID}
    assert properties["Principal"] == "apigateway.amazonaws.com"
    deployed = stack(region="cn-northwest-1", FrontDoor="ApiGateway")
    assert deployed.value(properties["SourceArn"]) == (
        "arn:aws-cn:execute-api:cn-northwest-1:123456789012:<RelayApi>/*"
    )


def test_api_url_output(template: Doc, stack: Any) -> None:
    output = template["Outputs"]["ApiUrl"]
    assert output["Condition"] == "UseApiGateway"
    assert stack(FrontDoor="Both").value(output["Value"]) == (
        "https://<RelayApi>.execute-api.us-east-1.amazonaws.com/<RelayApi.Stage>/"
    )


# --- what SAM generates -------------------------------------------------------------------------


def test_generated_api_keeps_streaming_and_is_conditional(generated: Doc) -> None:
    resources = generated["Resources"]
    apis = {k: v for k, v in resources.items() if v["Type"].startswith("AWS::ApiGateway::")}
    # The usage plan's resources are tested with it (test_api_callers.py).
    apis = {k: v for k, v in apis.items() if v.get("Condition") != "UseUsagePlan"}
    kinds = sorted(v["Type"] for v in apis.values())
    # One API, one deployment, one stage (no extra "Stage" stage), nothing else.
    assert kinds == [
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Stage",
    ]
    assert all(v.get("Condition") == "UseApiGateway" for v in apis.values())
    body = resources[API_ID]["Properties"]["Body"]
    for integration in integrations({"DefinitionBody": body}).values():
        assert integration["responseTransferMode"] == "STREAM"
    (stage,) = (v for v in apis.values() if v["Type"] == "AWS::ApiGateway::Stage")
    assert stage["Properties"]["StageName"] == "api"
    assert "RelayApiInvokePermission" in resources


# --- alarms ---------------------------------------------------------------------------------------


def alarms(template: Doc) -> dict[str, Doc]:
    return {
        name: resource["Properties"]
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }


def metric_of(alarm: Doc) -> tuple[str, Any]:
    if "MetricName" in alarm:
        return alarm["MetricName"], alarm["Dimensions"]
    (stat,) = (m["MetricStat"] for m in alarm["Metrics"] if "MetricStat" in m)
    return stat["Metric"]["MetricName"], stat["Metric"]["Dimensions"]


def test_alarms_watch_the_function(template: Doc) -> None:
    # The key alarm watches the function's own metrics (tests/infra/test_dashboard.py).
    lambda_alarms = {n: a for n, a in alarms(template).items() if n != "RelayKeySidelinedAlarm"}
    found = {metric_of(alarm)[0]: alarm for alarm in lambda_alarms.values()}
    assert set(found) == {"Errors", "Throttles", "Duration"}
    for alarm in found.values():
        _, dimensions = metric_of(alarm)
        assert dimensions == [{"Name": "FunctionName", "Value": {"Ref": FUNCTION_ID}}]
        assert alarm["TreatMissingData"] == "notBreaching"  # no traffic is not a failure


def test_alarms_notify_the_topic_only_when_one_is_given(template: Doc, stack: Any) -> None:
    topic = "arn:aws-us-gov:sns:us-gov-west-1:123456789012:relay-alarms"
    assert re.fullmatch(template["Parameters"]["AlarmTopicArn"]["AllowedPattern"], topic)
    for name, alarm in alarms(template).items():
        without = stack().value(alarm)
        assert "AlarmActions" not in without and "OKActions" not in without, name
        with_topic = stack(region="us-gov-west-1", AlarmTopicArn=topic).value(alarm)
        assert with_topic["AlarmActions"] == with_topic["OKActions"] == [topic], name


def test_near_timeout_alarm_is_a_share_of_the_timeout(template: Doc, stack: Any) -> None:
    alarm = alarms(template)["RelayNearTimeoutAlarm"]
    assert metric_of(alarm)[0] == "Duration"
    (stat,) = (m for m in alarm["Metrics"] if "MetricStat" in m)
    assert stat["MetricStat"]["Stat"] == "Maximum"
    (expression,) = (m for m in stack(Timeout=300).value(alarm)["Metrics"] if "Expression" in m)
    # Duration is in ms: 270000 ms of a 300 s timeout is 90 %.
    assert expression["Expression"] == f"{stat['Id']} / (300 * 10)"
    assert 270_000 / (300 * 10) == alarm["Threshold"] == 90
