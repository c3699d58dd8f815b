"""Provider settings: the verifier's own checks, and building it from the relay's Settings."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from provider_support import (
    AUDIENCE,
    ISSUER,
    SigningKey,
    ec_key,
)

from glm_relay.access.jwks import DEFAULT_ALGORITHMS
from glm_relay.access.provider import ProviderVerifier
from glm_relay.config import Settings

COGNITO_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
COGNITO_CLIENT = "4b1sfj0p5n1ojmnp0bcnnr6jrq"


# --- configuration -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"issuer": ""}, "issuer is empty"),
        ({"audience": ""}, "audience"),
        ({"audience": []}, "audience"),
        ({"algorithms": []}, "at least one algorithm"),
        ({"algorithms": ["HS256"]}, "'HS256' is not allowed"),
        ({"algorithms": ["RS256", "none"]}, "'none' is not allowed"),
        ({"algorithms": ["RS257"]}, "is not allowed"),
        ({"leeway_seconds": -1}, "leeway_seconds"),
        ({"leeway_seconds": float("nan")}, "leeway_seconds"),
        ({"user_claim": ""}, "user claim"),
        ({"subject_prefix": "p" * 33}, "subject_prefix"),
        ({"required_scopes": [""]}, "required scope"),
        ({"required_groups": [" admins"]}, "required group"),
        ({"jwks_url": "http://keys.example.test/jwks"}, "https://"),
        ({"jwks_url": "ftp://127.0.0.1/jwks"}, "https://"),
        ({"jwks_url": None, "issuer": "glm-idp"}, "https://"),
        ({"refresh_interval_seconds": 0}, "refresh_interval_seconds"),
        ({"fetch_timeout_seconds": -1}, "fetch_timeout_seconds"),
    ],
)
def test_bad_configuration_raises_value_error(options, message):
    settings: dict[str, Any] = {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "jwks_url": "https://keys.example.test/jwks",
    }
    settings.update(options)
    with pytest.raises(ValueError, match=message):
        ProviderVerifier(**settings)


def test_non_url_issuer_is_fine_with_an_explicit_jwks_url():
    verifier = ProviderVerifier(issuer="glm-idp", audience="a", jwks_url="https://k.test/jwks")
    assert verifier.rules.issuer == "glm-idp"


def test_http_is_allowed_for_loopback_hosts():
    for url in ("http://127.0.0.1:8080/jwks", "http://localhost/jwks", "http://[::1]:1/jwks"):
        ProviderVerifier(issuer=ISSUER, audience="a", jwks_url=url)


def provider_from(environ: dict[str, str]) -> ProviderVerifier | None:
    """What a container builds: Settings from the environment, then the verifier from them."""
    return ProviderVerifier.from_settings(Settings.from_env(environ))


def test_no_provider_settings_means_no_verifier():
    assert provider_from({}) is None
    assert provider_from({"ACCESS_TOKEN_SECRET": "x" * 40}) is None


def test_every_setting_reaches_the_verifier():
    verifier = provider_from(
        {
            "ACCESS_TOKEN_ISSUER": COGNITO_ISSUER,
            "ACCESS_TOKEN_JWKS_URL": " https://keys.example.test/jwks ",
            "ACCESS_TOKEN_AUDIENCE": "client-a, client-b",
            "ACCESS_TOKEN_USER_CLAIM": "username",
            "ACCESS_TOKEN_SUBJECT_PREFIX": "cognito:",
            "ACCESS_TOKEN_REQUIRED_SCOPE": "glm-relay/chat, openid profile",
            "ACCESS_TOKEN_REQUIRED_GROUP": "relay-users,admins",
            "ACCESS_TOKEN_GROUP_CLAIM": "cognito:roles",
            "ACCESS_TOKEN_LEEWAY_SECONDS": "30",
            "ACCESS_TOKEN_ALGORITHMS": "RS256, ES256",
        }
    )
    assert verifier is not None
    rules = verifier.rules
    assert rules.issuer == COGNITO_ISSUER
    assert rules.audiences == ("client-a", "client-b")
    assert rules.user_claim == "username"
    assert rules.subject_prefix == "cognito:"
    assert rules.required_scopes == ("glm-relay/chat", "openid", "profile")
    assert rules.required_groups == ("relay-users", "admins")
    assert rules.group_claim == "cognito:roles"
    assert rules.leeway_seconds == 30
    assert rules.client_id_audience is True  # a Cognito user pool issuer
    assert verifier.algorithms == ("RS256", "ES256")


def test_settings_defaults():
    verifier = provider_from(
        {"ACCESS_TOKEN_ISSUER": "https://tenant.eu.auth0.com/", "ACCESS_TOKEN_AUDIENCE": "api"}
    )
    assert verifier is not None
    rules = verifier.rules
    assert verifier.algorithms == DEFAULT_ALGORITHMS
    assert rules.leeway_seconds == 60
    assert rules.user_claim == "sub"
    assert rules.subject_prefix == ""
    assert rules.group_claim == "groups"
    assert rules.client_id_audience is False
    assert rules.required_scopes == () and rules.required_groups == ()


def test_explicit_settings_beat_the_environment():
    settings = Settings.from_env(
        {"ACCESS_TOKEN_ISSUER": ISSUER, "ACCESS_TOKEN_AUDIENCE": "from-env"},
        access_token_audience=("explicit",),
    )
    verifier = ProviderVerifier.from_settings(settings)
    assert verifier is not None and verifier.rules.audiences == ("explicit",)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"ACCESS_TOKEN_JWKS_URL": "https://k.test/jwks"}, "ACCESS_TOKEN_ISSUER is required"),
        ({"ACCESS_TOKEN_AUDIENCE": "api"}, "ACCESS_TOKEN_ISSUER is required"),
        ({"ACCESS_TOKEN_ISSUER": ISSUER}, "ACCESS_TOKEN_AUDIENCE is required"),
        (
            {
                "ACCESS_TOKEN_ISSUER": ISSUER,
                "ACCESS_TOKEN_AUDIENCE": "a",
                "ACCESS_TOKEN_ALGORITHMS": "HS256",
            },
            "not allowed",
        ),
        (
            {"ACCESS_TOKEN_ISSUER": "http://idp.example.test", "ACCESS_TOKEN_AUDIENCE": "a"},
            "https://",
        ),
    ],
)
def test_incomplete_or_bad_settings_are_refused(environ, message):
    with pytest.raises(ValueError, match=message):
        provider_from(environ)


def test_a_leeway_that_is_not_a_number_is_refused_by_the_settings():
    with pytest.raises(ValueError, match="ACCESS_TOKEN_LEEWAY_SECONDS"):
        Settings.from_env({"ACCESS_TOKEN_LEEWAY_SECONDS": "a minute"})


def test_importing_the_module_loads_nothing_heavy():
    code = (
        "import sys, glm_relay.access.provider\n"
        "heavy = {'jwt', 'cryptography', 'httpx'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    package_root = Path(__file__).resolve().parents[3] / "functions" / "relay"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=package_root)


def test_signing_key_helper_round_trip():
    # The helper's own JWK is what PyJWT builds keys from; guard the fixtures themselves.
    key: SigningKey = ec_key()
    jwk = key.jwk()
    assert jwk["kid"] == "ec-1" and jwk["crv"] == "P-256" and "d" not in jwk
