"""Provider tokens' claims: issuer, audience, times, the user id, scopes, groups, Cognito."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from provider_support import (
    AUDIENCE,
    ISSUER,
    NOW,
    MakeVerifier,
    denied,
    rsa_key,
)

from glm_relay.access import AccessDenied
from glm_relay.access.provider import ProviderForbidden, ProviderVerifier

COGNITO_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
COGNITO_CLIENT = "4b1sfj0p5n1ojmnp0bcnnr6jrq"


# --- claims --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"iss": "https://evil.example.test/"}, "wrong issuer"),
        ({"iss": ISSUER.rstrip("/")}, "wrong issuer"),
        ({"iss": None}, "missing claim: iss"),
        ({"aud": "another-api"}, "wrong audience"),
        ({"aud": ["another-api", "third"]}, "wrong audience"),
        ({"aud": []}, "wrong audience"),
        ({"aud": None}, "missing claim: aud"),
        ({"aud": 42}, "invalid claim: aud"),
        ({"aud": [AUDIENCE, 42]}, "invalid claim: aud"),
        ({"exp": None}, "missing claim: exp"),
        ({"exp": "soon"}, "invalid claim: exp"),
        ({"exp": True}, "invalid claim: exp"),
        ({"exp": -1}, "invalid claim: exp"),
        ({"nbf": "later"}, "invalid claim: nbf"),
        ({"iat": [1]}, "invalid claim: iat"),
        ({"sub": None}, "missing claim: sub"),
        ({"sub": ""}, "invalid claim: sub"),
        ({"sub": "line\nbreak"}, "invalid claim: sub"),
        ({"sub": ["a"]}, "invalid claim: sub"),
        ({"sub": True}, "invalid claim: sub"),
        ({"exp": NOW - 3600}, "token expired"),
        ({"nbf": NOW + 3600}, "token not yet valid"),
    ],
)
async def test_claim_refusals(verifier, claims, change, message):
    for name, value in change.items():
        if value is None:
            del claims[name]
        else:
            claims[name] = value
    assert await denied(verifier, rsa_key().sign(claims)) == message


async def test_the_issuer_is_checked_before_the_clock(verifier, claims):
    claims.update(iss="https://evil.example.test/", exp=NOW - 3600)
    assert await denied(verifier, rsa_key().sign(claims)) == "wrong issuer"


async def test_numeric_user_id_becomes_a_string(verifier, claims):
    claims["sub"] = 1234567
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "1234567"


async def test_custom_user_claim(make_verifier, claims):
    verifier = make_verifier(user_claim="email")
    claims["email"] = "ada@example.test"
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "ada@example.test"
    del claims["email"]
    assert await denied(verifier, rsa_key().sign(claims)) == "missing claim: email"


async def test_namespaced_user_claim_is_read_as_it_is(make_verifier, claims):
    name = "https://relay.example.test/user_id"
    claims[name] = "u-7"
    assert (await make_verifier(user_claim=name).verify(rsa_key().sign(claims))).sub == "u-7"


async def test_dotted_user_claim_reads_a_nested_object(make_verifier, claims):
    claims["ext"] = {"user": {"id": "nested-9"}}
    verifier = make_verifier(user_claim="ext.user.id")
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "nested-9"
    claims["ext"] = {"user": "flat"}
    assert await denied(verifier, rsa_key().sign(claims)) == "missing claim: ext.user.id"


async def test_long_user_id_is_hashed(verifier, claims):
    long_id = "x" * 300
    claims["sub"] = long_id
    sub = (await verifier.verify(rsa_key().sign(claims))).sub
    assert sub == "sha256:" + hashlib.sha256(long_id.encode()).hexdigest()
    assert len(sub) <= 128


async def test_subject_prefix_namespaces_provider_users(make_verifier, claims):
    verifier = make_verifier(subject_prefix="idp:")
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "idp:user-42"
    claims["sub"] = "y" * 125
    assert (await verifier.verify(rsa_key().sign(claims))).sub.startswith("idp:sha256:")


# --- clock and leeway ----------------------------------------------------------------------------


async def test_expiry_leeway_with_the_injected_clock(make_verifier, clock, claims):
    claims["exp"] = NOW
    token = rsa_key().sign(claims)
    verifier = make_verifier(leeway_seconds=60)
    clock.now = NOW + 59.9
    assert (await verifier.verify(token)).sub == "user-42"
    clock.now = NOW + 60
    assert await denied(verifier, token) == "token expired"


async def test_not_before_leeway_with_the_injected_clock(make_verifier, clock, claims):
    claims["nbf"] = NOW + 100
    token = rsa_key().sign(claims)
    verifier = make_verifier(leeway_seconds=60)
    clock.now = NOW + 40
    assert (await verifier.verify(token)).sub == "user-42"
    clock.now = NOW + 39.9
    assert await denied(verifier, token) == "token not yet valid"


async def test_zero_leeway(make_verifier, clock, claims):
    claims.update(exp=NOW + 10, nbf=NOW)
    token = rsa_key().sign(claims)
    verifier = make_verifier(leeway_seconds=0)
    clock.now = NOW - 0.5
    assert await denied(verifier, token) == "token not yet valid"
    clock.now = NOW + 9.9
    assert (await verifier.verify(token)).sub == "user-42"
    clock.now = NOW + 10
    assert await denied(verifier, token) == "token expired"


async def test_default_leeway_is_a_minute(verifier, clock, claims):
    claims["exp"] = NOW
    token = rsa_key().sign(claims)
    clock.now = NOW + 30
    assert (await verifier.verify(token)).sub == "user-42"
    clock.now = NOW + 61
    assert await denied(verifier, token) == "token expired"


async def test_iat_in_the_future_is_not_compared_with_the_clock(verifier, claims):
    claims["iat"] = NOW + 3600
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"


# --- scopes and groups ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "grant",
    [
        {"scope": "openid glm-relay/chat profile"},
        {"scp": "glm-relay/chat"},
        {"scp": ["openid", "glm-relay/chat"]},
    ],
)
async def test_required_scope_present(make_verifier, claims, grant):
    claims.update(grant)
    verifier = make_verifier(required_scopes=["glm-relay/chat"])
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"


@pytest.mark.parametrize(
    "grant",
    [{}, {"scope": "openid profile"}, {"scope": "glm-relay/chatter"}, {"scp": ["glm-relay"]}],
)
async def test_required_scope_missing_is_forbidden(make_verifier, claims, grant):
    claims.update(grant)
    verifier = make_verifier(required_scopes=["glm-relay/chat"])
    with pytest.raises(ProviderForbidden) as caught:
        await verifier.verify(rsa_key().sign(claims))
    assert caught.value.message == "missing required scope"
    assert caught.value.code == "forbidden"
    assert isinstance(caught.value, AccessDenied)


async def test_every_required_scope_is_needed(make_verifier, claims):
    verifier = make_verifier(required_scopes=["chat", "history"])
    claims["scope"] = "chat"
    assert await denied(verifier, rsa_key().sign(claims)) == "missing required scope"
    claims["scope"] = "history chat"
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"


async def test_any_required_group_is_enough(make_verifier, claims):
    verifier = make_verifier(required_groups=["relay-users", "admins"])
    claims["groups"] = ["staff", "admins"]
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"
    claims["groups"] = "relay-users"
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"
    for groups in (["staff"], [], None, {"relay-users": True}):
        claims["groups"] = groups
        assert await denied(verifier, rsa_key().sign(claims)) == "missing required group"


async def test_group_claim_may_be_a_nested_path(make_verifier, claims):
    verifier = make_verifier(required_groups=["relay"], group_claim="realm_access.roles")
    claims["realm_access"] = {"roles": ["offline_access", "relay"]}
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"


async def test_expired_token_is_expired_before_it_is_forbidden(make_verifier, claims):
    claims["exp"] = NOW - 3600
    verifier = make_verifier(required_scopes=["chat"])
    assert await denied(verifier, rsa_key().sign(claims)) == "token expired"


# --- Cognito -------------------------------------------------------------------------------------


@pytest.fixture
def cognito(make_verifier: MakeVerifier) -> ProviderVerifier:
    return make_verifier(
        issuer=COGNITO_ISSUER, audience=COGNITO_CLIENT, required_groups=["relay-users"]
    )


def cognito_access_token(**changes: Any) -> dict[str, Any]:
    payload = {
        "sub": "a1b2c3d4-0000-1111-2222-333344445555",
        "cognito:groups": ["relay-users"],
        "iss": COGNITO_ISSUER,
        "version": 2,
        "client_id": COGNITO_CLIENT,
        "token_use": "access",
        "scope": "openid email",
        "auth_time": NOW - 100,
        "exp": NOW + 3500,
        "iat": NOW - 100,
        "jti": "e2b2f5d8",
        "username": "ada",
    }
    payload.update(changes)
    return {name: value for name, value in payload.items() if value is not None}


async def test_cognito_access_token_uses_client_id_as_audience(cognito):
    assert cognito.rules.group_claim == "cognito:groups" and cognito.rules.client_id_audience
    claims = await cognito.verify(rsa_key().sign(cognito_access_token()))
    assert claims.sub == "a1b2c3d4-0000-1111-2222-333344445555"


async def test_cognito_access_token_for_another_client_is_refused(cognito):
    token = rsa_key().sign(cognito_access_token(client_id="someone-else"))
    assert await denied(cognito, token) == "wrong audience"
    token = rsa_key().sign(cognito_access_token(client_id=None))
    assert await denied(cognito, token) == "missing claim: client_id"


async def test_cognito_client_id_counts_only_for_access_tokens(cognito):
    token = rsa_key().sign(cognito_access_token(token_use="id"))
    assert await denied(cognito, token) == "missing claim: aud"


async def test_cognito_id_token_is_checked_by_its_aud(cognito):
    payload = cognito_access_token(token_use="id", client_id=None, scope=None, aud=COGNITO_CLIENT)
    assert (await cognito.verify(rsa_key().sign(payload))).sub.startswith("a1b2c3d4")
    payload["aud"] = "someone-else"
    assert await denied(cognito, rsa_key().sign(payload)) == "wrong audience"


async def test_cognito_group_is_required(cognito):
    token = rsa_key().sign(cognito_access_token(**{"cognito:groups": ["others"]}))
    assert await denied(cognito, token) == "missing required group"


async def test_client_id_is_no_audience_for_other_issuers(verifier, claims):
    del claims["aud"]
    claims.update(client_id=AUDIENCE, token_use="access")
    assert await denied(verifier, rsa_key().sign(claims)) == "missing claim: aud"
