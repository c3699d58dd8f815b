"""The provider's key set: rotation, bounded refresh, outages, discovery, injected fetch."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from typing import Any

import pytest
from provider_support import (
    AUDIENCE,
    DISCOVERY_PATH,
    ISSUER,
    NOW,
    IdentityProvider,
    denied,
    rsa_key,
    unavailable,
    unsigned_token,
)

from glm_relay.access import AccessDenied
from glm_relay.access.provider import ProviderVerifier

COGNITO_ISSUER = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
COGNITO_CLIENT = "4b1sfj0p5n1ojmnp0bcnnr6jrq"


# --- rotation and refresh ------------------------------------------------------------------------


async def test_key_rotation(verifier, clock, idp, claims):
    claims["exp"] = NOW + 86400
    old, new = rsa_key("2024-key"), rsa_key("2025-key")
    idp.publish(old)
    old_token = old.sign(claims)
    assert (await verifier.verify(old_token)).sub == "user-42"

    # The provider publishes the next key, then starts signing with it.
    clock.advance(verifier.keys.refresh_interval_seconds)
    idp.publish(old, new)
    assert (await verifier.verify(new.sign(claims))).sub == "user-42"
    assert idp.jwks_hits() == 2
    assert (await verifier.verify(old_token)).sub == "user-42"  # still in the set

    # The old key leaves the set: known tokens keep working until the set is fetched again...
    idp.publish(new)
    clock.advance(60)
    assert (await verifier.verify(old_token)).sub == "user-42"
    assert idp.jwks_hits() == 2
    # ...which happens once the cached set is older than its maximum age.
    clock.advance(verifier.keys.max_age_seconds)
    assert await denied(verifier, old_token) == "unknown signing key"
    assert (await verifier.verify(new.sign(claims))).sub == "user-42"
    assert idp.jwks_hits() == 3


async def test_a_withdrawn_key_is_noticed_by_a_rotation_refresh(verifier, clock, idp, claims):
    first, second = rsa_key("first"), rsa_key("second")
    idp.publish(first)
    first_token = first.sign(claims)
    assert (await verifier.verify(first_token)).sub == "user-42"
    idp.publish(second)  # rotated in one step
    clock.advance(verifier.keys.refresh_interval_seconds)
    assert (await verifier.verify(second.sign(claims))).sub == "user-42"
    assert await denied(verifier, first_token) == "unknown signing key"


async def test_new_kid_within_the_refresh_interval_waits_for_it(verifier, clock, idp, claims):
    await verifier.verify(rsa_key().sign(claims))
    newcomer = rsa_key("newcomer")
    idp.publish(rsa_key(), newcomer)
    clock.advance(1)
    assert await denied(verifier, newcomer.sign(claims)) == "unknown signing key"
    clock.advance(verifier.keys.refresh_interval_seconds)
    assert (await verifier.verify(newcomer.sign(claims))).sub == "user-42"


async def test_random_kids_cannot_hammer_the_provider(verifier, clock, idp, claims):
    attacker = rsa_key("x", seed="attacker")
    await verifier.verify(rsa_key().sign(claims))
    for _ in range(3):
        clock.advance(verifier.keys.refresh_interval_seconds)
        for _ in range(50):
            token = attacker.sign(claims, kid=uuid.uuid4().hex)
            assert await denied(verifier, token) == "unknown signing key"
            clock.advance(0.1)
    # The first load, then one refresh per interval however many kids were tried.
    assert idp.jwks_hits() == 4


async def test_concurrent_verifications_share_one_fetch(verifier, idp, claims):
    idp.delay = 0.2
    token = rsa_key().sign(claims)
    results = await asyncio.gather(*(verifier.verify(token) for _ in range(20)))
    assert {claims.sub for claims in results} == {"user-42"}
    assert idp.jwks_hits() == 1


async def test_concurrent_unknown_kids_share_one_refresh(verifier, clock, idp, claims):
    await verifier.verify(rsa_key().sign(claims))
    clock.advance(verifier.keys.refresh_interval_seconds)
    idp.delay = 0.2
    attacker = rsa_key("x", seed="attacker")
    tokens = [attacker.sign(claims, kid=f"kid-{i}") for i in range(20)]
    outcomes = await asyncio.gather(*(verifier.verify(t) for t in tokens), return_exceptions=True)
    assert all(isinstance(o, AccessDenied) for o in outcomes)
    assert idp.jwks_hits() == 2


# --- provider unavailable ------------------------------------------------------------------------


async def test_jwks_endpoint_error_is_unavailable_not_denied(verifier, idp, claims):
    idp.status = 500
    error = await unavailable(verifier, rsa_key().sign(claims))
    assert "HTTP 500" in error.detail and idp.jwks_url in error.detail
    assert 0 < error.retry_after <= verifier.keys.retry_interval_seconds


async def test_jwks_endpoint_down(make_verifier, claims):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    verifier = make_verifier(jwks_url=f"http://127.0.0.1:{port}/jwks.json")
    error = await unavailable(verifier, rsa_key().sign(claims))
    assert error.detail.startswith("fetching the provider's keys failed: ConnectError")


async def test_slow_jwks_endpoint_times_out(make_verifier, idp, claims):
    idp.delay = 1.5
    verifier = make_verifier(fetch_timeout_seconds=0.2)
    error = await unavailable(verifier, rsa_key().sign(claims))
    assert "timed out" in error.detail or "Timeout" in error.detail


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b"<html>maintenance</html>", "is not JSON"),
        (b"[]", "is not a JSON object"),
        (b'{"keys": {}}', "has no keys list"),
        (b'{"keys": []}', "has no public signing keys"),
        (b'{"keys": [{"kty": "oct", "k": "AAAA"}]}', "has no public signing keys"),
        (b"{" + b" " * (300 * 1024) + b"}", "more than"),
    ],
)
async def test_unusable_key_set_is_unavailable(verifier, idp, claims, body, detail):
    idp.body = body
    error = await unavailable(verifier, rsa_key().sign(claims))
    assert detail in error.detail


async def test_no_retry_storm_while_the_provider_is_down(verifier, clock, idp, claims):
    idp.status = 503
    token = rsa_key().sign(claims)
    for _ in range(20):
        await unavailable(verifier, token)
    assert idp.jwks_hits() == 1
    clock.advance(verifier.keys.retry_interval_seconds)
    idp.status = 200
    assert (await verifier.verify(token)).sub == "user-42"
    assert idp.jwks_hits() == 2


async def test_known_keys_survive_a_provider_outage(verifier, clock, idp, claims):
    claims["exp"] = NOW + 86400
    token = rsa_key().sign(claims)
    await verifier.verify(token)
    idp.status = 500
    clock.advance(verifier.keys.max_age_seconds)  # due for a refresh, which fails
    assert (await verifier.verify(token)).sub == "user-42"
    assert idp.jwks_hits() == 2
    # An unknown kid during the outage cannot be told apart from a new key: unavailable.
    await unavailable(verifier, rsa_key("newcomer").sign(claims))
    assert idp.jwks_hits() == 2


async def test_unknown_kid_when_the_refresh_fails_is_unavailable(verifier, clock, idp, claims):
    await verifier.verify(rsa_key().sign(claims))
    idp.status = 502
    clock.advance(verifier.keys.refresh_interval_seconds)
    await unavailable(verifier, rsa_key("newcomer").sign(claims))


async def test_refused_tokens_do_not_wait_for_a_down_provider(verifier, idp, claims):
    idp.status = 500
    assert await denied(verifier, unsigned_token(claims, {"alg": "none"})) == (
        "algorithm not allowed"
    )
    assert idp.jwks_hits() == 0


# --- discovery -----------------------------------------------------------------------------------


def discovery_for(idp: IdentityProvider, issuer: str) -> dict[str, Any]:
    return {
        "issuer": issuer,
        "jwks_uri": idp.jwks_url,
        "authorization_endpoint": issuer + "/authorize",
        "id_token_signing_alg_values_supported": ["RS256"],
    }


@pytest.mark.parametrize("suffix", ["", "/", "/eu-west-1_Pool"])
async def test_discovery_finds_the_key_set(idp, clock, claims, suffix):
    issuer = idp.base_url + suffix
    idp.discovery = discovery_for(idp, issuer)
    verifier = ProviderVerifier(issuer=issuer, audience=AUDIENCE, clock=clock)
    claims["iss"] = issuer
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"
    path = suffix.rstrip("/") + DISCOVERY_PATH
    assert idp.hits[path] == 1 and idp.jwks_hits() == 1

    # Later refreshes go straight to the key set.
    clock.advance(verifier.keys.refresh_interval_seconds)
    await denied(verifier, rsa_key("new").sign(claims))
    assert idp.hits[path] == 1 and idp.jwks_hits() == 2


async def test_discovery_for_another_issuer_is_unavailable(idp, clock, claims):
    idp.discovery = discovery_for(idp, "https://impostor.example.test")
    verifier = ProviderVerifier(issuer=idp.base_url, audience=AUDIENCE, clock=clock)
    claims["iss"] = idp.base_url
    error = await unavailable(verifier, rsa_key().sign(claims))
    assert "names another issuer" in error.detail
    assert idp.jwks_hits() == 0


@pytest.mark.parametrize(
    ("jwks_uri", "detail"),
    [(None, "has no jwks_uri"), ("http://keys.example.test/jwks", "must be an https:// URL")],
)
async def test_discovery_without_a_usable_jwks_uri(idp, clock, claims, jwks_uri, detail):
    idp.discovery = discovery_for(idp, idp.base_url)
    if jwks_uri is None:
        del idp.discovery["jwks_uri"]
    else:
        idp.discovery["jwks_uri"] = jwks_uri
    verifier = ProviderVerifier(issuer=idp.base_url, audience=AUDIENCE, clock=clock)
    claims["iss"] = idp.base_url
    assert detail in (await unavailable(verifier, rsa_key().sign(claims))).detail


async def test_missing_discovery_document_is_unavailable(idp, clock, claims):
    verifier = ProviderVerifier(issuer=idp.base_url, audience=AUDIENCE, clock=clock)
    claims["iss"] = idp.base_url
    assert "HTTP 404" in (await unavailable(verifier, rsa_key().sign(claims))).detail


# --- injected fetch ------------------------------------------------------------------------------


async def test_injected_fetch_is_used(clock, claims):
    seen: list[str] = []
    jwks = json.dumps({"keys": [rsa_key().jwk()]}).encode()

    async def fetch(url: str) -> bytes:
        seen.append(url)
        return jwks

    verifier = ProviderVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url="https://keys.example.test/",
        fetch=fetch,
        clock=clock,
    )
    assert (await verifier.verify(rsa_key().sign(claims))).sub == "user-42"
    assert seen == ["https://keys.example.test/"]


async def test_injected_fetch_that_hangs_is_cut_off(clock, claims):
    async def fetch(url: str) -> bytes:
        await asyncio.sleep(30)
        return b""

    verifier = ProviderVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url="https://keys.example.test/",
        fetch=fetch,
        clock=clock,
        fetch_timeout_seconds=0.05,
    )
    error = await unavailable(verifier, rsa_key().sign(claims))
    assert "timed out" in error.detail


async def test_missing_cryptography_is_a_deployment_error(verifier, claims, monkeypatch):
    import jwt.api_jwk

    monkeypatch.setattr(jwt.api_jwk, "has_crypto", False)
    with pytest.raises(ValueError, match="cryptography"):
        await verifier.verify(rsa_key().sign(claims))
