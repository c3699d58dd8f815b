"""What a deployer relies on in template.yaml: streaming URL, runtime, wrapper, least privilege.

The API Gateway front door, partitions and alarms have their own modules beside this one.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from .cfn import Stack
from .conftest import FUNCTION_ID, ROOT

Doc = dict[str, Any]
URL_ID = f"{FUNCTION_ID}Url"

SECRET_ENV = {"ZHIPU_SECRET_ID", "ACCESS_TOKEN_SECRET_ID"}
PACKAGE = ROOT / "functions" / "relay" / "glm_relay"


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def statements(function: Doc) -> list[Doc]:
    """Inline policy statements of the function (SAM `Policies` entries with a `Statement`); a
    statement under ``Fn::If`` counts once, as the statement it may become."""
    found = []
    for policy in as_list(function.get("Policies", [])):
        assert isinstance(policy, dict), f"managed policy by name is not allowed here: {policy!r}"
        assert "Statement" in policy, f"only inline statements are allowed: {policy!r}"
        for statement in as_list(policy["Statement"]):
            if "Fn::If" in statement:
                _, then, otherwise = statement["Fn::If"]
                assert otherwise == {"Ref": "AWS::NoValue"}, statement
                statement = then
            found.append(statement)
    return found


def package_sources() -> dict[Path, str]:
    return {path: path.read_text(encoding="utf-8") for path in PACKAGE.rglob("*.py")}


def code_dir(function: Doc) -> Path:
    return ROOT / function["CodeUri"]


# --- the function -----------------------------------------------------------------------------


def test_function_runtime_and_package(function: Doc) -> None:
    assert function["CodeUri"].rstrip("/") == "functions/relay"
    assert function["Handler"] == "glm_relay.handler.handle"
    assert function["Architectures"] == [{"Ref": "Architecture"}]
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


def test_architecture_is_a_choice_defaulting_to_arm64(template: Doc) -> None:
    parameter = template["Parameters"]["Architecture"]
    assert parameter["AllowedValues"] == ["arm64", "x86_64"]
    assert parameter["Default"] == "arm64"


def test_reserved_concurrency_is_opt_in(template: Doc, function: Doc, stack: Any) -> None:
    # A new account's quota is 10 and Lambda keeps 100 unreserved: any default reservation fails
    # the whole stack there.
    reserved = {"Ref": "ReservedConcurrency"}
    assert function["ReservedConcurrentExecutions"] == {
        "Fn::If": ["HasReservedConcurrency", reserved, {"Ref": "AWS::NoValue"}]
    }
    assert template["Parameters"]["ReservedConcurrency"]["Default"] == ""
    assert not stack().condition("HasReservedConcurrency")
    assert not stack(ReservedConcurrency="0").condition("HasReservedConcurrency")
    assert stack(ReservedConcurrency="5").condition("HasReservedConcurrency")
    rendered = stack().value(function)
    assert "ReservedConcurrentExecutions" not in rendered
    assert stack(ReservedConcurrency="5").value(function)["ReservedConcurrentExecutions"] == "5"


# --- the function URL and CORS ----------------------------------------------------------------


@pytest.fixture(scope="module")
def url(template: Doc) -> Doc:
    resource = template["Resources"][URL_ID]
    assert resource["Type"] == "AWS::Lambda::Url"
    properties: Doc = resource["Properties"]
    return properties


def test_function_url_streams_and_is_public(template: Doc, url: Doc) -> None:
    assert template["Resources"][URL_ID]["Condition"] == "UseFunctionUrl"
    assert url["TargetFunctionArn"] == {"Ref": FUNCTION_ID}
    assert url["InvokeMode"] == "RESPONSE_STREAM"
    assert url["AuthType"] == "NONE"


def test_public_url_has_both_grants_and_no_more(template: Doc) -> None:
    # The logical ids SAM gives them, so a stack deployed from FunctionUrlConfig keeps its URL.
    grants = {
        name: resource
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Lambda::Permission"
        and resource["Properties"]["Principal"] == "*"
    }
    assert set(grants) == {
        f"{URL_ID}PublicPermissions",
        f"{FUNCTION_ID}URLInvokeAllowPublicAccess",
    }
    for resource in grants.values():
        assert resource["Condition"] == "UseFunctionUrl"
        assert resource["Properties"]["FunctionName"] == {"Ref": FUNCTION_ID}
    url_grant = grants[f"{URL_ID}PublicPermissions"]["Properties"]
    assert url_grant["Action"] == "lambda:InvokeFunctionUrl"
    assert url_grant["FunctionUrlAuthType"] == "NONE"
    invoke_grant = grants[f"{FUNCTION_ID}URLInvokeAllowPublicAccess"]["Properties"]
    assert invoke_grant["Action"] == "lambda:InvokeFunction"
    # Only through the URL: without this anyone could call Invoke on the function directly.
    assert invoke_grant["InvokedViaFunctionUrl"] is True


def test_cors_is_configured_on_the_url(url: Doc) -> None:
    cors = url["Cors"]
    assert cors["AllowOrigins"] == {"Ref": "AllowedOrigins"}
    assert set(cors["AllowMethods"]) == {"GET", "POST"}
    assert set(cors["AllowHeaders"]) == {"authorization", "content-type", "last-event-id"}
    assert 0 < cors["MaxAge"] <= 86400  # the Lambda maximum


def test_cors_exposes_what_a_page_reads(url: Doc) -> None:
    exposed = url["Cors"]["ExposeHeaders"]
    assert {"x-request-id", "retry-after"} <= set(exposed)
    assert all(name == name.lower() for name in exposed)
    # Each exposed header is one the function actually sends.
    code = "\n".join(package_sources().values()).lower()
    missing = [name for name in exposed if f'"{name}"' not in code]
    assert missing == [], f"exposed but never sent: {missing}"


def test_cors_is_configured_nowhere_else(template: Doc) -> None:
    # Two sources of Access-Control-* headers make browsers reject the response.
    def places(node: Any, path: str) -> list[str]:
        if isinstance(node, dict):
            here = [path] if "Cors" in node else []
            return here + [p for k, v in node.items() for p in places(v, f"{path}.{k}")]
        if isinstance(node, list):
            return [p for i, v in enumerate(node) for p in places(v, f"{path}[{i}]")]
        return []

    assert places(template, "") == [f".Resources.{URL_ID}.Properties"]
    assert "Globals" not in template or "Api" not in template["Globals"]
    assert "FunctionUrlConfig" not in template["Resources"][FUNCTION_ID]["Properties"]


def test_function_code_sends_cors_headers_from_one_module_only(function: Doc) -> None:
    # The function URL's CORS is its own configuration; the function answers CORS only for the
    # API Gateway front door, in web/cors.py (tests/front_door checks it stays off for URLs).
    offenders = [
        str(path.relative_to(ROOT))
        for path in code_dir(function).rglob("*.py")
        if "access-control-allow" in path.read_text(encoding="utf-8").lower()
    ]
    assert offenders == ["functions/relay/glm_relay/web/cors.py"]


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


def dynamodb_operations_in_code() -> set[str]:
    """``dynamodb:Action`` for every ``table.call("snake_name", ...)`` in the package."""
    called = set()
    for source in package_sources().values():
        called |= set(re.findall(r'\.call\(\s*"([a-z_]+)"', source))
    assert called, "no table.call(...) found: has the store changed how it calls DynamoDB?"
    return {"dynamodb:" + name.title().replace("_", "") for name in called}


def test_table_access_is_scoped_to_what_the_code_calls(function: Doc) -> None:
    table_statements = [
        s
        for s in statements(function)
        if any(str(a).startswith("dynamodb:") for a in as_list(s["Action"]))
    ]
    assert len(table_statements) == 1
    granted = set(as_list(table_statements[0]["Action"]))
    assert granted == dynamodb_operations_in_code()
    assert "dynamodb:DeleteItem" not in granted  # items leave through the TTL
    assert table_statements[0]["Resource"] == {"Fn::GetAtt": ["ConversationsTable", "Arn"]}


def test_kms_decrypt_is_optional_and_only_through_secrets_manager(
    template: Doc, function: Doc, stack: Any
) -> None:
    parameter = template["Parameters"]["SecretsKmsKeyArn"]
    assert parameter["Default"] == ""
    key = "arn:aws-cn:kms:cn-north-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    assert re.fullmatch(parameter["AllowedPattern"], key)
    assert not re.fullmatch(parameter["AllowedPattern"], "alias/aws/secretsmanager")

    def kms_statements(deployed: Stack) -> list[Doc]:
        policies = deployed.value(function["Policies"])
        return [
            s
            for policy in policies
            for s in as_list(policy["Statement"])
            if any(str(a).startswith("kms:") for a in as_list(s["Action"]))
        ]

    assert kms_statements(stack()) == []
    (statement,) = kms_statements(stack(region="cn-north-1", SecretsKmsKeyArn=key))
    assert statement["Action"] == "kms:Decrypt"
    assert statement["Resource"] == key
    assert statement["Condition"] == {
        "StringEquals": {"kms:ViaService": "secretsmanager.cn-north-1.amazonaws.com.cn"}
    }


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
        ("DefaultModel", "glm-4.7-flash"),
        ("AllowedModels", ""),
        ("ModelAliases", ""),
        ("MaxTokensCap", 0),
        ("DefaultMaxTokens", 8192),
        ("WebSearch", "on"),
        ("WebSearchOptions", "{}"),
        ("MaxVisionBodyBytes", 0),
        ("MaxBodyBytes", 6000000),
        ("MaxPromptChars", 800000),
        ("MaxMessages", 2000),
        ("ReservedConcurrency", ""),
        ("FrontDoor", "FunctionUrl"),
        ("Architecture", "arm64"),
        ("SecretsExtensionLayerArn", ""),
        ("SecretsKmsKeyArn", ""),
        ("AlarmTopicArn", ""),
        ("LogRetentionDays", 14),
        ("QuotaRequestsPerDay", 200),
        ("QuotaTokensPerDay", 200000),
        ("QuotaOverlap", "true"),
        ("Currency", "USD"),
        ("DefaultSpendPerDay", 0),
        ("DefaultSpendPerMonth", 0),
        ("ModelPrices", "{}"),
        ("ZhipuBaseUrl", "https://open.bigmodel.cn/api/paas/v4"),
        ("LogLevel", "INFO"),
        ("RequireAccessToken", "true"),
        ("ExistingZhipuSecretArn", ""),
        ("ExistingAccessTokenSecretArn", ""),
    ],
)
def test_parameter_defaults(template: Doc, name: str, default: Any) -> None:
    assert template["Parameters"][name]["Default"] == default


def test_default_model_is_a_current_free_model_of_the_catalogue(template: Doc) -> None:
    from glm_relay.chat.models import CATALOGUE

    parameters = template["Parameters"]
    default = parameters["DefaultModel"]["Default"]
    assert default in CATALOGUE and CATALOGUE[default].free
    # An allow-list, when an operator sets one, must hold the default model.
    rule = template["Rules"]["DefaultModelIsAllowed"]
    assert rule["RuleCondition"] == {
        "Fn::Not": [{"Fn::Equals": [{"Fn::Join": [",", {"Ref": "AllowedModels"}]}, ""]}]
    }
    assert parameters["RequireAccessToken"]["AllowedValues"] == ["true", "false"]


def test_model_aliases_default_to_the_relay_s_and_take_either_spelling(
    template: Doc, env: Doc
) -> None:
    from glm_relay.chat.models import DEFAULT_ALIASES, aliased
    from glm_relay.config import Settings

    assert env["MODEL_ALIASES"] == {"Ref": "ModelAliases"}
    default = template["Parameters"]["ModelAliases"]["Default"]
    settings = Settings.from_env({"MODEL_ALIASES": default})
    assert settings.model_aliases is None  # empty: the relay's defaults
    assert {aliased(settings, name.rstrip("*") + "x") for name in DEFAULT_ALIASES} <= {
        "glm-5.1",
        "glm-4.7-flash",
    }
    for value in ("claude-*=glm-4.6,fast=glm-4.7-flash", '{"claude-*": "glm-4.6"}'):
        assert aliased(Settings.from_env({"MODEL_ALIASES": value}), "claude-x") == "glm-4.6"


@pytest.mark.parametrize(
    ("parameter", "variable", "field"),
    [
        ("MaxBodyBytes", "MAX_BODY_BYTES", "max_body_bytes"),
        ("MaxPromptChars", "MAX_PROMPT_CHARS", "max_prompt_chars"),
        ("MaxMessages", "MAX_MESSAGES", "max_messages"),
        ("MaxVisionBodyBytes", "MAX_VISION_BODY_BYTES", "max_vision_body_bytes"),
    ],
)
def test_input_limits_are_parameters_with_the_function_s_defaults(
    template: Doc, env: Doc, parameter: str, variable: str, field: str
) -> None:
    from glm_relay.config import Settings

    assert env[variable] == {"Ref": parameter}
    assert template["Parameters"][parameter]["Default"] == getattr(Settings(), field)


def test_environment_names(env: Doc) -> None:
    assert set(env) >= {
        "AWS_LAMBDA_EXEC_WRAPPER",
        "ZHIPU_SECRET_ID",
        "ZHIPU_BASE_URL",
        "DEFAULT_MODEL",
        "ALLOWED_MODELS",
        "MAX_TOKENS_CAP",
        "DEFAULT_MAX_TOKENS",
        "WEB_SEARCH",
        "WEB_SEARCH_OPTIONS",
        "MODEL_ALIASES",
        "MAX_BODY_BYTES",
        "MAX_PROMPT_CHARS",
        "MAX_MESSAGES",
        "MAX_VISION_BODY_BYTES",
        "ACCESS_TOKEN_SECRET_ID",
        "REQUIRE_ACCESS_TOKEN",
        "ALLOWED_ORIGINS",
        "CONVERSATIONS_TABLE",
        "QUOTA_REQUESTS_PER_DAY",
        "QUOTA_TOKENS_PER_DAY",
        "QUOTA_OVERLAP",
        "CURRENCY",
        "DEFAULT_SPEND_PER_DAY",
        "DEFAULT_SPEND_PER_MONTH",
        "MODEL_PRICES",
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
    assert outputs["FunctionUrl"] == {"Fn::GetAtt": [URL_ID, "FunctionUrl"]}
    assert template["Outputs"]["FunctionUrl"]["Condition"] == "UseFunctionUrl"
    assert outputs["FunctionName"] == {"Ref": FUNCTION_ID}
    assert outputs["ConversationsTableName"] == {"Ref": "ConversationsTable"}
    env = template["Resources"][FUNCTION_ID]["Properties"]["Environment"]["Variables"]
    assert outputs["ZhipuSecretArn"] == env["ZHIPU_SECRET_ID"]
    assert outputs["AccessTokenSecretArn"] == env["ACCESS_TOKEN_SECRET_ID"]


# --- what SAM generates -------------------------------------------------------------------------


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
        if p.get("Condition") == "UseFunctionUrl"
    }
    assert grants == {("lambda:InvokeFunctionUrl", "*"), ("lambda:InvokeFunction", "*")}


def test_generated_role_grants_nothing_broad(generated: Doc) -> None:
    (role,) = of_type(generated, "AWS::IAM::Role").values()
    assert role["Properties"]["ManagedPolicyArns"] == [
        "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
    ]
    for policy in role["Properties"]["Policies"]:
        for statement in as_list(policy["PolicyDocument"]["Statement"]):
            if "Fn::If" in statement:
                statement = statement["Fn::If"][1]
            assert "*" not in repr(as_list(statement["Resource"])), statement
