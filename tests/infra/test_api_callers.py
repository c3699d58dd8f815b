"""Who may call through API Gateway: the optional Cognito user-pool authorizer, the optional usage
plan with its API key, and what each choice makes of the API, the function's settings and grants.

Each case renders template.yaml with the parameters a deployer would pass (``cfn.Stack``), so a
condition that leaves a resource behind, or guards the page or the preflights, shows here.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from .cfn import Stack
from .conftest import FUNCTION_ID

Doc = dict[str, Any]
POOL = "arn:aws:cognito-idp:us-east-1:123456789012:userpool/us-east-1_AbCdEf123"
CN_POOL = "arn:aws-cn:cognito-idp:cn-north-1:123456789012:userpool/cn-north-1_AbCdEf123"
PLAN_RESOURCES = {"RelayUsagePlan", "RelayApiKey", "RelayUsagePlanKey"}
DOORS = ["FunctionUrl", "ApiGateway", "Both"]
# Every choice a deployer can make here: door, authorizer on or off, usage plan on or off.
CHOICES = [
    pytest.param(door, pool, plan, id=f"{door}-{'cognito' if pool else 'open'}-plan={plan}")
    for door, pool, plan in itertools.product(DOORS, ["", POOL], ["false", "true"])
    if door != "FunctionUrl" or (not pool and plan == "false")
]


def api_body(deployed: Stack) -> Doc:
    body: Doc = deployed.value(deployed.template["Resources"]["RelayApi"]["Properties"])[
        "DefinitionBody"
    ]
    return body


def rule_holds(deployed: Stack, name: str) -> bool:
    rule = deployed.template["Rules"][name]
    if not deployed.value(rule["RuleCondition"]):
        return True
    return all(deployed.value(a["Assert"]) for a in rule["Assertions"])


def function_env(deployed: Stack) -> Doc:
    properties = deployed.value(deployed.template["Resources"][FUNCTION_ID]["Properties"])
    env: Doc = properties["Environment"]["Variables"]
    return env


def test_parameters_default_to_no_authorizer_and_no_usage_plan(template: Doc) -> None:
    parameters = template["Parameters"]
    assert parameters["ApiCognitoUserPoolArn"]["Default"] == ""
    assert parameters["ApiUsagePlan"]["Default"] == "false"
    assert parameters["ApiUsagePlan"]["AllowedValues"] == ["true", "false"]
    assert parameters["ApiQuotaPerDay"]["Default"] == 0  # 0: throttling only
    pattern = parameters["ApiCognitoUserPoolArn"]["AllowedPattern"]
    for good in ("", POOL, CN_POOL):
        assert re.fullmatch(pattern, good), good
    for bad in ("us-east-1_AbCdEf123", POOL.replace("userpool/", "identitypool/"), POOL + " "):
        assert not re.fullmatch(pattern, bad), bad


@pytest.mark.parametrize(("door", "pool", "plan"), CHOICES)
def test_each_choice_creates_exactly_its_resources(stack: Any, door: str, pool: str, plan: str):
    deployed = stack(FrontDoor=door, ApiCognitoUserPoolArn=pool, ApiUsagePlan=plan)
    api = door != "FunctionUrl"

    assert rule_holds(deployed, "ApiGatewayCallerOptionsNeedTheApi")
    for name in PLAN_RESOURCES:
        assert deployed.exists(name) is (api and plan == "true"), name
    assert deployed.exists("ApiKeyId", "Outputs") is (api and plan == "true")
    # The function believes the authorizer exactly when there is one.
    assert function_env(deployed)["TRUST_API_GATEWAY_AUTHORIZER"] == str(bool(pool)).lower()


@pytest.mark.parametrize(("door", "pool", "plan"), CHOICES)
def test_the_api_guards_every_route_but_the_page_and_the_preflights(
    stack: Any, door: str, pool: str, plan: str
) -> None:
    deployed = stack(FrontDoor=door, ApiCognitoUserPoolArn=pool, ApiUsagePlan=plan)
    if door == "FunctionUrl":
        assert not deployed.exists("RelayApi")
        return
    body = api_body(deployed)
    proxy = body["paths"]["/{proxy+}"]
    expected = {"CognitoUserPool": [], "ApiKey": []} if pool and plan == "true" else None
    if expected is None:
        expected = {"CognitoUserPool": []} if pool else {"ApiKey": []} if plan == "true" else {}
    # One requirement holding both schemes: a caller needs the token and the key together.
    assert proxy["x-amazon-apigateway-any-method"].get("security", [{}]) == [expected]
    assert "security" not in proxy["options"], "a browser's preflight carries no token or key"
    assert "security" not in body["paths"]["/"]["x-amazon-apigateway-any-method"], "the page"
    assert "security" not in body, "no API-wide requirement that would reach the page"
    schemes = body["components"]["securitySchemes"]
    assert set(schemes) == set(expected)


def test_the_authorizer_is_the_given_user_pool_checking_the_authorization_header(
    stack: Any,
) -> None:
    deployed = stack(region="cn-north-1", FrontDoor="Both", ApiCognitoUserPoolArn=CN_POOL)
    scheme = api_body(deployed)["components"]["securitySchemes"]["CognitoUserPool"]

    assert scheme == {
        "type": "apiKey",
        "name": "Authorization",
        "in": "header",
        "x-amazon-apigateway-authtype": "cognito_user_pools",
        "x-amazon-apigateway-authorizer": {
            "type": "cognito_user_pools",
            "providerARNs": [CN_POOL],
        },
    }
    # A Cognito authorizer is API Gateway's own: no function, no role, no grant to add.
    invoke = deployed.value(deployed.template["Resources"]["RelayApiInvokePermission"])
    assert invoke["Properties"]["Principal"] == "apigateway.amazonaws.com"


def test_the_api_key_is_read_from_x_api_key(stack: Any) -> None:
    scheme = api_body(stack(FrontDoor="ApiGateway", ApiUsagePlan="true"))["components"]
    assert scheme["securitySchemes"]["ApiKey"] == {
        "type": "apiKey",
        "name": "x-api-key",
        "in": "header",
    }


def test_preflights_still_reach_the_function_as_a_stream(stack: Any) -> None:
    proxy = api_body(stack(FrontDoor="ApiGateway", ApiUsagePlan="true"))["paths"]["/{proxy+}"]
    assert (
        proxy["options"]["x-amazon-apigateway-integration"]
        == (proxy["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"])
    )
    assert proxy["options"]["parameters"] == proxy["x-amazon-apigateway-any-method"]["parameters"]


def test_usage_plan_throttles_the_stage_and_has_a_quota_only_when_asked(stack: Any) -> None:
    plain = stack(FrontDoor="ApiGateway", ApiUsagePlan="true")
    plan = plain.value(plain.template["Resources"]["RelayUsagePlan"]["Properties"])
    assert plan["ApiStages"] == [{"ApiId": "<RelayApi>", "Stage": "<RelayApi.Stage>"}]
    assert plan["Throttle"] == {"RateLimit": 5, "BurstLimit": 10}
    assert "Quota" not in plan

    quota = stack(
        FrontDoor="Both",
        ApiUsagePlan="true",
        ApiThrottleRate=0.5,
        ApiThrottleBurst=3,
        ApiQuotaPerDay=1000,
    )
    plan = quota.value(quota.template["Resources"]["RelayUsagePlan"]["Properties"])
    assert plan["Throttle"] == {"RateLimit": 0.5, "BurstLimit": 3}
    assert plan["Quota"] == {"Limit": 1000, "Period": "DAY"}


def test_the_key_belongs_to_the_plan_and_its_id_is_an_output(template: Doc, stack: Any) -> None:
    resources = template["Resources"]
    assert resources["RelayApiKey"]["Properties"]["Enabled"] is True
    assert resources["RelayUsagePlanKey"]["Properties"] == {
        "KeyId": {"Ref": "RelayApiKey"},
        "KeyType": "API_KEY",
        "UsagePlanId": {"Ref": "RelayUsagePlan"},
    }
    assert template["Outputs"]["ApiKeyId"]["Value"] == {"Ref": "RelayApiKey"}
    assert "--include-value" in template["Outputs"]["ApiKeyId"]["Description"]


@pytest.mark.parametrize(
    "parameters",
    [{"ApiCognitoUserPoolArn": POOL}, {"ApiUsagePlan": "true"}],
    ids=["authorizer", "usage-plan"],
)
def test_api_gateway_options_without_the_api_are_refused(stack: Any, parameters: Doc) -> None:
    # Otherwise a deployer would believe the function URL guarded by something that is not there.
    assert not rule_holds(
        stack(FrontDoor="FunctionUrl", **parameters), "ApiGatewayCallerOptionsNeedTheApi"
    )


def test_a_changed_choice_is_deployed_to_the_stage(template: Doc) -> None:
    # SAM names the deployment after the definition as written (intrinsics unresolved), so
    # turning the authorizer on would otherwise leave the stage on the old deployment.
    assert template["Resources"]["RelayApi"]["Properties"]["AlwaysDeploy"] is True


# --- what SAM generates -------------------------------------------------------------------------


def test_generated_api_keeps_the_conditional_security_and_adds_no_grant(generated: Doc) -> None:
    resources = generated["Resources"]
    kinds = {name: r["Type"] for name, r in resources.items() if name in PLAN_RESOURCES}
    assert kinds == {
        "RelayUsagePlan": "AWS::ApiGateway::UsagePlan",
        "RelayApiKey": "AWS::ApiGateway::ApiKey",
        "RelayUsagePlanKey": "AWS::ApiGateway::UsagePlanKey",
    }
    assert all(resources[name]["Condition"] == "UseUsagePlan" for name in PLAN_RESOURCES)
    # The plan names SAM's generated stage, so it is created after the stage exists.
    (stage,) = (k for k, v in resources.items() if v["Type"] == "AWS::ApiGateway::Stage")
    assert resources["RelayUsagePlan"]["Properties"]["ApiStages"][0]["Stage"] == {"Ref": stage}
    body = resources["RelayApi"]["Properties"]["Body"]
    security = body["paths"]["/{proxy+}"]["x-amazon-apigateway-any-method"]["security"]
    assert security["Fn::If"][0] == "UseCognitoAuthorizer"
    # Neither an authorizer nor a usage plan gives anything a grant on the function.
    permissions = [r for r in resources.values() if r["Type"] == "AWS::Lambda::Permission"]
    principals = sorted(p["Properties"]["Principal"] for p in permissions)
    assert principals == ["*", "*", "apigateway.amazonaws.com"]
