"""The identity-provider parameters: off by default, passed to the function whole, and read by
the same settings the function builds its verifier from."""

from __future__ import annotations

import re
from typing import Any

import pytest

from glm_relay.access.provider import ProviderVerifier
from glm_relay.config import Settings

from .test_package import MAKEFILE, make

Doc = dict[str, Any]
PARAMETERS = {
    "AccessTokenIssuer": "ACCESS_TOKEN_ISSUER",
    "AccessTokenAudience": "ACCESS_TOKEN_AUDIENCE",
    "AccessTokenJwksUrl": "ACCESS_TOKEN_JWKS_URL",
    "AccessTokenUserClaim": "ACCESS_TOKEN_USER_CLAIM",
    "AccessTokenRequiredScope": "ACCESS_TOKEN_REQUIRED_SCOPE",
    "AccessTokenRequiredGroup": "ACCESS_TOKEN_REQUIRED_GROUP",
}
COGNITO = {
    "AccessTokenIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
    "AccessTokenAudience": "4b1sfj0p5n1ojmnp0bcnnr6jrq",
    "AccessTokenRequiredScope": "glm-relay/chat",
    "AccessTokenRequiredGroup": "relay-users",
}


def provider_env(stack: Any, env: Doc, **parameters: str) -> dict[str, str]:
    """The provider variables as the function would see them with these parameter values."""
    deployed = stack(**parameters)
    return {name: str(deployed.value(env[name])) for name in PARAMETERS.values()}


@pytest.mark.parametrize(("parameter", "variable"), PARAMETERS.items())
def test_each_parameter_reaches_its_variable(template: Doc, env: Doc, parameter, variable):
    assert env[variable] == {"Ref": parameter}
    assert template["Parameters"][parameter]["Type"] == "String"


def test_the_provider_is_off_by_default(template: Doc, env: Doc, stack: Any) -> None:
    defaults = {name: template["Parameters"][name]["Default"] for name in PARAMETERS}
    assert defaults == {
        name: ("sub" if name == "AccessTokenUserClaim" else "") for name in PARAMETERS
    }
    assert ProviderVerifier.from_settings(Settings.from_env(provider_env(stack, env))) is None


def test_a_cognito_user_pool_configures_the_verifier(env: Doc, stack: Any) -> None:
    verifier = ProviderVerifier.from_settings(
        Settings.from_env(provider_env(stack, env, **COGNITO))
    )
    assert verifier is not None
    rules = verifier.rules
    assert rules.issuer == COGNITO["AccessTokenIssuer"]
    assert rules.audiences == (COGNITO["AccessTokenAudience"],)
    assert rules.client_id_audience and rules.group_claim == "cognito:groups"
    assert rules.required_scopes == ("glm-relay/chat",)
    assert rules.required_groups == ("relay-users",)
    assert rules.user_claim == "sub"


@pytest.mark.parametrize("name", ["AccessTokenIssuer", "AccessTokenJwksUrl"])
def test_provider_urls_must_be_https(template: Doc, name: str) -> None:
    pattern = re.compile(template["Parameters"][name]["AllowedPattern"])
    assert pattern.fullmatch("") and pattern.fullmatch("https://idp.example.com/")
    assert not pattern.fullmatch("http://idp.example.com/")


def test_an_issuer_needs_an_audience_and_nothing_works_without_an_issuer(template: Doc) -> None:
    rules = template["Rules"]
    complete = rules["IdentityProviderIsComplete"]
    assert complete["RuleCondition"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AccessTokenIssuer"}, ""]}]
    }
    assert complete["Assertions"][0]["Assert"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AccessTokenAudience"}, ""]}]
    }
    orphan = rules["IdentityProviderNeedsAnIssuer"]
    assert orphan["RuleCondition"] == {"Fn::Equals": [{"Ref": "AccessTokenIssuer"}, ""]}
    asserted = orphan["Assertions"][0]["Assert"]["Fn::And"]
    assert {"Fn::Equals": [{"Ref": "AccessTokenAudience"}, ""]} in asserted
    assert {"Fn::Equals": [{"Ref": "AccessTokenJwksUrl"}, ""]} in asserted


def test_the_parameters_form_one_group_in_the_console(template: Doc) -> None:
    groups = template["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (group,) = [g for g in groups if "AccessTokenIssuer" in g["Parameters"]]
    assert group["Parameters"] == list(PARAMETERS)


# --- compiled wheels follow the function's processor ---------------------------------------------


@pytest.mark.parametrize(
    ("architecture", "platform"),
    [("arm64", "manylinux2014_aarch64"), ("x86_64", "manylinux2014_x86_64")],
)
def test_wheels_are_chosen_for_the_architecture(tmp_path, architecture, platform):
    dry_run = make(
        "-n",
        "build-RelayFunction",
        f"ARTIFACTS_DIR={tmp_path}",
        f"LAMBDA_ARCHITECTURE={architecture}",
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert f"--platform {platform} " in dry_run.stdout


def test_the_default_architecture_is_the_templates(template: Doc) -> None:
    (default,) = re.findall(r"^LAMBDA_ARCHITECTURE \?= (\S+)$", MAKEFILE.read_text(), re.M)
    assert default == template["Parameters"]["Architecture"]["Default"]


def test_an_unknown_architecture_is_refused(tmp_path) -> None:
    result = make("build-RelayFunction", f"ARTIFACTS_DIR={tmp_path}", "LAMBDA_ARCHITECTURE=mips")
    assert result.returncode != 0 and "arm64 or x86_64" in result.stderr
    assert list(tmp_path.iterdir()) == []
