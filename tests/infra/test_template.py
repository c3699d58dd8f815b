"""What a deployer relies on in template.yaml: streaming URL, runtime, wrapper, least privilege."""

from __future__ import annotations

import copy
import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from samtranslator.translator.transform import transform

from .conftest import FUNCTION_ID, ROOT

Doc = dict[str, Any]

SECRET_ENV = {"ZHIPU_SECRET_ID", "ACCESS_TOKEN_SECRET_ID"}
DYNAMODB_ACTIONS = {
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:UpdateItem",
    "dynamodb:Query",
    "dynamodb:DeleteItem",
}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(function: Doc) -> list[Doc]:
    """Inline policy statements of the function (SAM `Policies` entries with a `Statement`)."""
    found = []
    for policy in as_list(function.get("Policies", [])):
        assert isinstance(policy, dict), f"managed policy by name is not allowed here: {policy!r}"
        assert "Statement" in policy, f"only inline statements are allowed: {policy!r}"
        found.extend(as_list(policy["Statement"]))
    return found


def code_dir(function: Doc) -> Path:
    return ROOT / function["CodeUri"]


# --- the function -----------------------------------------------------------------------------


def test_function_runtime_and_package(function: Doc) -> None:
    assert function["CodeUri"].rstrip("/") == "functions/relay"
    assert function["Handler"] == "glm_relay.handler.handle"
    assert function["Architectures"] == ["arm64"]
    match = re.fullmatch(r"python3\.(\d+)", function["Runtime"])
    assert match and int(match.group(1)) >= 12, function["Runtime"]
    assert function["MemorySize"] == {"Ref": "MemorySize"}
    assert function["Timeout"] == {"Ref": "Timeout"}


def test_handler_module_is_in_the_package(function: Doc) -> None:
    module, _, attr = function["Handler"].rpartition(".")
    source = code_dir(function) / (module.replace(".", "/") + ".py")
    assert source.is_file(), f"{source} (named by Handler) is missing"
    defined = re.search(rf"^(async\s+)?def {attr}\(", source.read_text(), re.M)
    assert defined, f"no {attr} in {source}"


def test_exec_wrapper_is_an_executable_file_in_the_package(function: Doc, env: Doc) -> None:
    # Lambda unpacks CodeUri into /var/task and runs this script instead of its own bootstrap.
    wrapper = env["AWS_LAMBDA_EXEC_WRAPPER"]
    assert wrapper.startswith("/var/task/"), wrapper
    script = code_dir(function) / wrapper.removeprefix("/var/task/")
    assert script.is_file(), f"{script} is missing"
    assert os.access(script, os.X_OK), f"{script} is not executable"
    assert script.read_bytes().startswith(b"#!"), f"{script} has no #! line"


def test_exec_wrapper_is_executable_in_git(function: Doc, env: Doc) -> None:
    # A fresh clone (CI, another machine) gets the mode recorded in git, not the local one.
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    script = code_dir(function) / env["AWS_LAMBDA_EXEC_WRAPPER"].removeprefix("/var/task/")
    listed = subprocess.run(
        ["git", "ls-files", "-s", "--", str(script.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if not listed:
        pytest.skip(f"{script.name} is not committed yet")
    mode = listed.split()[0]
    assert mode == "100755", f"git records mode {mode}: run git update-index --chmod=+x"


def test_reserved_concurrency_is_conditional(template: Doc, function: Doc) -> None:
    reserved = {"Ref": "ReservedConcurrency"}
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", reserved, {"Ref": "AWS::NoValue"}]
    }
    condition = repr(template["Conditions"]["HasReservedConcurrency"])
    assert "''" in condition and "'0'" in condition, "0 and empty must both mean unreserved"


# --- the function URL and CORS ----------------------------------------------------------------


def test_function_url_streams_and_is_public(function: Doc) -> None:
    url = function["FunctionUrlConfig"]
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert url["AuthType"] == "NONE"


def test_cors_is_configured_on_the_url(function: Doc) -> None:
    cors = function["FunctionUrlConfig"]["Cors"]
    assert cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert set(cors["AllowMethods"]) == {"GET", "POST"}
    assert set(cors["AllowHeaders"]) == {"authorization", "content-type", "last-event-id"}
    assert 0 < cors["MaxAge"] <= 86400  # the Lambda maximum


def test_cors_is_configured_nowhere_else(template: Doc) -> None:
    # Two sources of Access-Control-* headers make browsers reject the response.
    def places(node: Any, path: str) -> list[str]:
        if isinstance(node, dict):
            here = [path] if "Cors" in node else []
            return here + [p for k, v in node.items() for p in places(v, f"{path}.{k}")]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in places(v, f"{path}[{i}]")]
        return []

    assert places(template, "") == [f".Resources.{FUNCTION_ID}.Properties.FunctionUrlConfig"]
    assert "Globals" not in template or "Api" not in template["Globals"]


def test_function_code_sends_no_cors_headers(function: Doc) -> None:
    offenders = [
        str(path.relative_to(ROOT))
        for path in code_dir(function).rglob("*.py")
        if "access-control-allow" in path.read_text(encoding="utf-8").lower()
    ]
    assert offenders == [], "CORS belongs to FunctionUrlConfig only"


def test_allowed_origins_reach_the_function(env: Doc, template: Doc) -> None:
    assert template["Parameters"]["AllowedOrigins"]["Type"] == "CommaDelimitedList"
    assert env["ALLOWED_ORIGINS"] == {"Fn::Join": [",", {"Ref": "AllowedOrigins"}]}


# --- secrets ----------------------------------------------------------------------------------


def test_secrets_are_created_unless_given(template: Doc, env: Doc) -> None:
    resources, conditions = template["Resources"], template["Conditions"]
    for env_name, resource_id, param, condition in [
        ("ZHIPU_SECRET_ID", "ZhipuApiKeySecret", "ExistingZhipuSecretArn", "CreateZhipuSecret"),
        (
            "ACCESS_TOKEN_SECRET_ID",
            "AccessTokenSecret",
            "ExistingAccessTokenSecretArn",
            "CreateAccessTokenSecret",
        ),
    ]:
        assert resources[resource_id]["Type"] == "AWS::SecretsManager::Secret"
        assert resources[resource_id]["Condition"] == condition
        assert conditions[condition] == {"Fn::Equals": [{"Ref": param}, ""]}
        assert template["Parameters"][param]["Default"] == ""
        assert env[env_name] == {"Fn::If": [condition, {"Ref": resource_id}, {"Ref": param}]}


def test_access_token_key_is_generated(template: Doc) -> None:
    generated = template["Resources"]["AccessTokenSecret"]["Properties"]["GenerateSecretString"]
    assert generated["PasswordLength"] >= 32  # HS256 wants at least 256 bits of key
    assert generated["ExcludePunctuation"] is True


def test_zhipu_secret_starts_as_a_placeholder(template: Doc) -> None:
    properties = template["Resources"]["ZhipuApiKeySecret"]["Properties"]
    assert "GenerateSecretString" not in properties
    assert "." not in properties["SecretString"], "the placeholder must not parse as <id>.<secret>"
    assert "put-secret-value" in template["Description"]


def test_secret_access_is_read_only_and_scoped(function: Doc, env: Doc) -> None:
    secret_statements = [
        s
        for s in statements(function)
        if any(str(a).lower().startswith("secretsmanager:") for a in as_list(s["Action"]))
    ]
    assert len(secret_statements) == 1
    statement = secret_statements[0]
    assert statement["Effect"] == "Allow"
    assert as_list(statement["Action"]) == ["secretsmanager:GetSecretValue"]
    resources = as_list(statement["Resource"])
    assert "*" not in repr(resources)
    # Exactly the two secrets the function is told to read, nothing else.
    assert sorted(map(repr, resources)) == sorted(repr(env[name]) for name in SECRET_ENV)


def test_no_statement_has_a_wildcard_resource(function: Doc) -> None:
    for statement in statements(function):
        assert "*" not in repr(as_list(statement["Resource"])), statement
        assert all("*" not in str(a) for a in as_list(statement["Action"])), statement


def test_existing_secret_arns_must_be_complete(template: Doc) -> None:
    # IAM matches the full ARN, whose name ends in a random 6-character suffix.
    for param in ("ExistingZhipuSecretArn", "ExistingAccessTokenSecretArn"):
        pattern = template["Parameters"][param]["AllowedPattern"]
        full = "arn:aws:secretsmanager:us-east-1:123456789012:secret:glm-relay/zhipu-AbC123"
        assert re.fullmatch(pattern, "")
        assert re.fullmatch(pattern, full)
        assert not re.fullmatch(pattern, full.removesuffix("-AbC123"))


# --- the table --------------------------------------------------------------------------------


def test_table_is_on_demand_with_pk_sk_and_ttl(template: Doc, env: Doc) -> None:
    table = template["Resources"]["ConversationsTable"]
    assert table["Type"] == "AWS::DynamoDB::Table"
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    attributes = properties["AttributeDefinitions"]
    assert {(a["AttributeName"], a["AttributeType"]) for a in attributes} == {
        ("pk", "S"),
        ("sk", "S"),
    }
    assert {(k["AttributeName"], k["KeyType"]) for k in properties["KeySchema"]} == {
        ("pk", "HASH"),
        ("sk", "RANGE"),
    }
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert env["CONVERSATIONS_TABLE"] == {"Ref": "ConversationsTable"}


def test_table_access_is_scoped(function: Doc) -> None:
    table_statements = [
        s
        for s in statements(function)
        if any(str(a).startswith("dynamodb:") for a in as_list(s["Action"]))
    ]
    assert len(table_statements) == 1
    assert set(as_list(table_statements[0]["Action"])) == DYNAMODB_ACTIONS
    assert table_statements[0]["Resource"] == {"Fn::GetAtt": ["ConversationsTable", "Arn"]}


# --- logs, parameters, environment, outputs ----------------------------------------------------


def test_log_group_has_retention_and_is_the_functions(template: Doc, function: Doc) -> None:
    group = template["Resources"]["RelayLogGroup"]
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert function["LoggingConfig"]["LogGroup"] == {"Ref": "RelayLogGroup"}
    # /aws/lambda/<function name>: where Lambda (and every tool) looks for the function's logs.
    assert function["FunctionName"] == {"Ref": "AWS::StackName"}
    assert group["Properties"]["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}"}
    assert template["Parameters"]["LogRetentionDays"]["Default"] == 14


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("MemorySize", 256),
        ("Timeout", 120),
        ("DefaultModel", "glm-4-flash"),
        (
            "AllowedModels",
            "glm-4-flash,glm-4-air,glm-4-plus,glm-4-long,glm-4,glm-4.5,glm-4.5-air,glm-4.6",
        ),
        ("MaxTokensCap", 4096),
        ("ReservedConcurrency", "10"),
        ("LogRetentionDays", 14),
        ("QuotaRequestsPerDay", 200),
        ("QuotaTokensPerDay", 200000),
        ("ZhipuBaseUrl", "https://open.bigmodel.cn/api/paas/v4"),
        ("LogLevel", "INFO"),
        ("RequireAccessToken", "true"),
        ("ExistingZhipuSecretArn", ""),
        ("ExistingAccessTokenSecretArn", ""),
    ],
)
def test_parameter_defaults(template: Doc, name: str, default: Any) -> None:
    assert template["Parameters"][name]["Default"] == default


def test_default_model_is_an_allowed_model(template: Doc) -> None:
    parameters = template["Parameters"]
    allowed = parameters["AllowedModels"]["Default"].split(",")
    assert parameters["DefaultModel"]["Default"] in allowed
    assert parameters["RequireAccessToken"]["AllowedValues"] == ["true", "false"]


def test_environment_names(env: Doc) -> None:
    assert set(env) >= {
        "AWS_LAMBDA_EXEC_WRAPPER",
        "ZHIPU_SECRET_ID",
        "ZHIPU_BASE_URL",
        "DEFAULT_MODEL",
        "ALLOWED_MODELS",
        "MAX_TOKENS_CAP",
        "ACCESS_TOKEN_SECRET_ID",
        "REQUIRE_ACCESS_TOKEN",
        "ALLOWED_ORIGINS",
        "CONVERSATIONS_TABLE",
        "QUOTA_REQUESTS_PER_DAY",
        "QUOTA_TOKENS_PER_DAY",
        "POWERTOOLS_SERVICE_NAME",
        "POWERTOOLS_METRICS_NAMESPACE",
        "POWERTOOLS_LOG_LEVEL",
        "LOG_LEVEL",
    }
    assert env["POWERTOOLS_SERVICE_NAME"] == "glm-relay"
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "GlmRelay"


def test_environment_names_are_read_by_the_settings(env: Doc) -> None:
    # A misspelt variable would be silently ignored by the function: check against its settings.
    from glm_relay.config import Settings

    known = {f.metadata["env"] for f in dataclasses.fields(Settings) if "env" in f.metadata}
    ours = {
        name for name in env if not name.startswith(("AWS_", "POWERTOOLS_")) and name != "LOG_LEVEL"
    }
    assert ours - known == set()


def test_outputs(template: Doc) -> None:
    outputs = {name: output["Value"] for name, output in template["Outputs"].items()}
    assert outputs["FunctionUrl"] == {"Fn::GetAtt": [f"{FUNCTION_ID}Url", "FunctionUrl"]}
    assert outputs["FunctionName"] == {"Ref": FUNCTION_ID}
    assert outputs["ConversationsTableName"] == {"Ref": "ConversationsTable"}
    env = template["Resources"][FUNCTION_ID]["Properties"]["Environment"]["Variables"]
    assert outputs["ZhipuSecretArn"] == env["ZHIPU_SECRET_ID"]
    assert outputs["AccessTokenSecretArn"] == env["ACCESS_TOKEN_SECRET_ID"]


# --- what SAM generates -------------------------------------------------------------------------


class _ManagedPolicies:
    """Stands in for the IAM lookup SAM makes for managed policy names."""

    def load(self) -> dict[str, str]:
        return {
            "AWSLambdaBasicExecutionRole": (
                "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
            )
        }


@pytest.fixture(scope="module")
def generated(template: Doc) -> Doc:
    """The template after the SAM transform, as CloudFormation will receive it."""
    sam = copy.deepcopy(template)
    # The transform wants an S3 location; `sam deploy` puts one there after uploading the code.
    sam["Resources"][FUNCTION_ID]["Properties"]["CodeUri"] = "s3://bucket/relay.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        return transform(sam, {}, _ManagedPolicies())


def of_type(generated: Doc, kind: str) -> dict[str, Doc]:
    return {k: v for k, v in generated["Resources"].items() if v["Type"] == kind}


def test_generated_url_is_streaming_and_invokable(generated: Doc) -> None:
    (url,) = of_type(generated, "AWS::Lambda::Url").values()
    assert url["Properties"]["InvokeMode"] == "RESPONSE_STREAM"
    assert url["Properties"]["AuthType"] == "NONE"
    # A public URL needs both grants: InvokeFunctionUrl, and InvokeFunction via the URL.
    grants = {
        (p["Properties"]["Action"], p["Properties"]["Principal"])
        for p in of_type(generated, "AWS::Lambda::Permission").values()
    }
    assert grants == {("lambda:InvokeFunctionUrl", "*"), ("lambda:InvokeFunction", "*")}


def test_generated_role_grants_nothing_broad(generated: Doc) -> None:
    (role,) = of_type(generated, "AWS::IAM::Role").values()
    assert role["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    for policy in role["Properties"]["Policies"]:
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            assert "*" not in repr(as_list(statement["Resource"])), statement
