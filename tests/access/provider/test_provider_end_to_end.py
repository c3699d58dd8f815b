"""Provider tokens through the local function URL: a container configured with an identity
provider (a JWKS server on loopback made here), the session's fake Zhipu and moto.

Each refusal is checked where it matters: the caller gets 401 (403, 503) and the upstream saw
nothing at all.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from provider_support import (
    AUDIENCE,
    ISSUER,
    FakeClock,
    IdentityProvider,
    ec_key,
    hmac_token,
    rsa_key,
    unsigned_token,
)

from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack
from glm_relay.access import mint_access_token
from glm_relay.access.provider import ProviderVerifier
from glm_relay.state.dynamo import QUOTA_PREFIX
from glm_relay.web.app import WebApp
from glm_relay.web.guard import Guard
from tests.hardening.support import serving, variant_app
from tests.support.sse_client import read_stream

pytestmark = pytest.mark.usefixtures("upstream_log")

PREFIX = "idp:"


@pytest.fixture(scope="module")
def provider() -> Iterator[IdentityProvider]:
    idp = IdentityProvider()
    idp.publish(rsa_key(), ec_key())
    with idp.running():
        yield idp


def provider_settings(idp: IdentityProvider, **more: Any) -> dict[str, Any]:
    return {
        "access_token_issuer": ISSUER,
        "access_token_audience": (AUDIENCE,),
        "access_token_jwks_url": idp.jwks_url,
        "access_token_subject_prefix": PREFIX,
        **more,
    }


@pytest.fixture(scope="module")
def relay(stack: DevStack, provider: IdentityProvider) -> Iterator[str]:
    """A container with both kinds of token on: the relay's own and the provider's."""
    with serving(variant_app(stack, **provider_settings(provider))) as url:
        yield url


def payload(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": now, "exp": now + 600}
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def upstream_requests(stack: DevStack, client: httpx.Client) -> list[dict[str, Any]]:
    assert stack.upstream is not None
    return client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]


def ask(client: httpx.Client, url: str, token: str, question: str = "Hello") -> httpx.Response:
    """GET /chat as a non-SSE client, so a refusal comes back as its HTTP status."""
    return client.get(
        f"{url}/chat", params={"q": question}, headers={"Authorization": f"Bearer {token}"}
    )


def quota_items(stack: DevStack, sub: str) -> list[dict[str, Any]]:
    result = stack.moto.client("dynamodb").query(
        TableName=stack.names["table"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"{QUOTA_PREFIX}{sub}"}},
    )
    return list(result["Items"])


def test_provider_token_gets_an_answer_owned_by_the_provider_user(stack, client, relay):
    sub = f"user-{time.time_ns()}"
    token = rsa_key().sign(payload(sub=sub))
    url = f"{relay}/chat?q={quote('Hello from the provider')}&conversation=new&access_token={token}"

    result = read_stream(client, "GET", url)

    assert result.status == 200 and result.terminal.event == "done"
    assert len(upstream_requests(stack, client)) == 1
    conversation = result.events[0].json["conversation_id"]
    history = client.get(
        f"{relay}/conversations/{conversation}", headers={"Authorization": f"Bearer {token}"}
    )
    assert history.status_code == 200 and history.json()["owner"] == PREFIX + sub
    [quota] = quota_items(stack, PREFIX + sub)
    assert quota["requests"] == {"N": "1"}
    assert quota_items(stack, sub) == []  # the unprefixed id is another user


def test_an_ec_token_and_the_relays_own_token_work_in_the_same_container(stack, client, relay):
    own = mint_access_token("own-user", 600, DEV_ACCESS_TOKEN_SECRET)

    assert ask(client, relay, ec_key().sign(payload())).status_code == 200
    assert ask(client, relay, own).status_code == 200
    assert len(upstream_requests(stack, client)) == 2


def test_the_conversation_of_a_provider_user_is_not_an_own_token_users(stack, client, relay):
    token = rsa_key().sign(payload(sub="shared-name"))
    result = read_stream(client, "GET", f"{relay}/chat?q=hi&conversation=new&access_token={token}")
    conversation = result.events[0].json["conversation_id"]
    own = mint_access_token("shared-name", 600, DEV_ACCESS_TOKEN_SECRET)

    theirs = client.get(
        f"{relay}/conversations/{conversation}", headers={"Authorization": f"Bearer {own}"}
    )
    assert theirs.status_code == 404


def _attacks() -> dict[str, tuple[Any, str]]:
    genuine = rsa_key()
    attacker = rsa_key("rsa-1", seed="attacker")  # the provider's kid, another key pair
    now = int(time.time())
    return {
        "wrong issuer": (lambda: genuine.sign(payload(iss="https://evil.test/")), "wrong issuer"),
        "wrong audience": (lambda: genuine.sign(payload(aud="another-api")), "wrong audience"),
        "expired": (lambda: genuine.sign(payload(exp=now - 3600)), "token expired"),
        "not yet valid": (lambda: genuine.sign(payload(nbf=now + 3600)), "token not yet valid"),
        "unknown key": (lambda: rsa_key("stranger").sign(payload()), "unknown signing key"),
        "known kid, other key": (lambda: attacker.sign(payload()), "bad signature"),
        "alg none": (
            lambda: unsigned_token(payload(), {"alg": "none", "kid": "rsa-1"}),
            "algorithm not allowed",
        ),
        # Algorithm confusion: HMAC over the provider's public key. HS256 is the relay's own
        # algorithm, so its own check refuses the MAC.
        "HS256 with the public key": (
            lambda: hmac_token(
                payload(), genuine.public_pem(), {"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}
            ),
            "bad signature",
        ),
        "HS512 with the public key": (
            lambda: hmac_token(payload(), genuine.public_pem(), {"alg": "HS512", "kid": "rsa-1"}),
            "algorithm not allowed",
        ),
        "missing user claim": (lambda: genuine.sign(payload(sub=None)), "missing claim: sub"),
    }


@pytest.mark.parametrize("attack", list(_attacks()))
def test_attacks_are_refused_with_nothing_sent_upstream(stack, client, relay, attack):
    make_token, reason = _attacks()[attack]

    response = ask(client, relay, make_token())

    assert response.status_code == 401
    assert response.json()["error"] == {"code": "unauthorized", "message": reason}
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert upstream_requests(stack, client) == []


def test_missing_scope_is_forbidden_with_nothing_sent_upstream(stack, client, provider):
    app = variant_app(stack, **provider_settings(provider, access_token_required_scope=("chat",)))
    with serving(app) as url:
        refused = ask(client, url, rsa_key().sign(payload(scope="openid")))
        allowed = ask(client, url, rsa_key().sign(payload(scope="openid chat")))

    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert 'error="insufficient_scope"' in refused.headers["www-authenticate"]
    assert allowed.status_code == 200
    assert len(upstream_requests(stack, client)) == 1


def test_a_provider_that_cannot_be_reached_is_a_retryable_503(stack, client, provider):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}/jwks.json"
    app = variant_app(stack, **provider_settings(provider, access_token_jwks_url=closed))
    with serving(app) as url:
        response = ask(client, url, rsa_key().sign(payload()))
        sse = read_stream(
            client, "GET", f"{url}/chat?q=hi&access_token={rsa_key().sign(payload())}"
        )

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "identity_provider_unavailable"
    assert int(response.headers["retry-after"]) >= 1
    assert sse.terminal.event == "error" and sse.terminal.json["retryable"] is True
    assert upstream_requests(stack, client) == []


def test_unusable_provider_settings_are_a_configuration_error(stack, client, provider):
    app = variant_app(stack, **provider_settings(provider, access_token_algorithms=("HS256",)))
    with serving(app) as url:
        response = ask(client, url, rsa_key().sign(payload()))

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "configuration_error"
    assert upstream_requests(stack, client) == []


def test_key_rotation_through_the_function_url(stack, client):
    """A new kid is picked up; old tokens work until their key leaves the published set."""
    clock = FakeClock(time.time())
    old, new = rsa_key("2025-key"), rsa_key("2026-key")
    idp = IdentityProvider()
    idp.publish(old)
    with idp.running():
        app = variant_app(stack, **provider_settings(idp))
        verifier = ProviderVerifier.from_settings(
            app.settings, clock=clock, refresh_interval_seconds=30, max_age_seconds=600
        )
        app.guard = rotating_guard(app, verifier)
        with serving(app) as url:
            claims = payload(exp=int(clock.now) + 86400)
            old_token, new_token = old.sign(claims), new.sign(claims)
            assert ask(client, url, old_token).status_code == 200

            idp.publish(old, new)  # the provider publishes its next key and signs with it
            clock.advance(30)
            assert ask(client, url, new_token).status_code == 200
            assert ask(client, url, old_token).status_code == 200
            assert idp.jwks_hits() == 2

            idp.publish(new)  # the old key leaves the set
            clock.advance(60)
            assert ask(client, url, old_token).status_code == 200  # cached set, still valid
            clock.advance(600)  # the cached set is too old: fetched again
            refused = ask(client, url, old_token)
            assert refused.status_code == 401
            assert refused.json()["error"]["message"] == "unknown signing key"
            assert ask(client, url, new_token).status_code == 200
            assert idp.jwks_hits() == 3
    assert len(upstream_requests(stack, client)) == 5


def rotating_guard(app: WebApp, verifier: ProviderVerifier | None) -> Guard:
    """The container's guard with a verifier on a clock the test moves."""
    assert verifier is not None
    return Guard(app.settings, app.services.signing_key, provider=verifier)


def test_a_provider_token_as_an_anthropic_api_key_gets_a_message(stack, client, relay):
    """Anthropic's SDKs (and Claude Code with ANTHROPIC_API_KEY) send the key as x-api-key."""
    from anthropic import Anthropic

    sub = f"claude-user-{time.time_ns()}"
    token = rsa_key().sign(payload(sub=sub))
    with Anthropic(base_url=relay, api_key=token, max_retries=0) as claude:
        message = claude.messages.create(
            model="glm-4-flash", max_tokens=20, messages=[{"role": "user", "content": "Hi"}]
        )

    assert message.stop_reason in ("end_turn", "max_tokens")
    assert len(upstream_requests(stack, client)) == 1
    [quota] = quota_items(stack, PREFIX + sub)  # the provider's user pays for it
    assert quota["requests"] == {"N": "1"}
