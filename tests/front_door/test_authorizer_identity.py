"""The caller named by API Gateway's Cognito authorizer (``TRUST_API_GATEWAY_AUTHORIZER``): taken
from REST API events only, refused when missing, and the owner of quotas and conversations."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import httpx
import pytest

from devtools.events import function_url_event, rest_api_event
from devtools.stack import DevStack
from glm_relay.access import AccessDenied
from glm_relay.access.authorizer import authorizer_identity
from glm_relay.config import Settings
from glm_relay.runtime import InvocationContext, StreamingResponse, now_ms
from glm_relay.web.app import WebApp

pytestmark = pytest.mark.usefixtures("upstream_log")
STREAM = {"Accept": "text/event-stream"}


def cognito_claims(sub: str) -> dict[str, str]:
    """What a user-pool authorizer passes on for an ID token: strings only, dates as text."""
    return {
        "sub": sub,
        "aud": "4ls1h0d0example",
        "email": "someone@example.com",
        "email_verified": "true",
        "token_use": "id",
        "auth_time": "1773163265",
        "iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Example",
        "cognito:username": "someone",
        "exp": "Tue Mar 10 18:21:05 UTC 2026",
        "iat": "Tue Mar 10 17:21:05 UTC 2026",
    }


async def make_app(stack: DevStack, *, trust: bool) -> WebApp:
    assert stack.app is not None
    return WebApp(replace(stack.app.settings, trust_api_gateway_authorizer=trust))


@pytest.fixture
async def trusting(stack: DevStack) -> AsyncIterator[WebApp]:
    app = await make_app(stack, trust=True)
    yield app
    await app.services.zhipu.aclose()


@pytest.fixture
async def not_trusting(stack: DevStack) -> AsyncIterator[WebApp]:
    app = await make_app(stack, trust=False)
    yield app
    await app.services.zhipu.aclose()


async def serve(app: WebApp, event: dict[str, Any]) -> tuple[StreamingResponse, bytes]:
    context = InvocationContext(aws_request_id=str(uuid.uuid4()), deadline_ms=now_ms() + 30_000)
    response = await app.handle(event, context)
    return response, b"".join([frame async for frame in response.body])


def sse_events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in filter(None, body.decode().split("\n\n")):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        if "event" in fields:
            events.append((fields["event"], json.loads(fields["data"])))
    return events


def upstream_count(stack: DevStack, client: httpx.Client) -> int:
    assert stack.upstream is not None
    return len(client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"])


def item(stack: DevStack, pk: str, sk: str) -> dict[str, Any]:
    key = {"pk": {"S": pk}, "sk": {"S": sk}}
    found = stack.moto.client("dynamodb").get_item(TableName=stack.names["table"], Key=key)
    return dict(found.get("Item") or {})


def with_claims(event: dict[str, Any], claims: dict[str, str]) -> dict[str, Any]:
    event["requestContext"]["authorizer"] = {"claims": claims}
    return event


async def test_a_rest_event_with_authorizer_claims_is_answered_for_that_user(
    trusting, stack, client
) -> None:
    sub = f"cognito-{uuid.uuid4()}"
    event = rest_api_event(
        "GET",
        "/chat?q=Hello+%23chunks%3D3&conversation=new",
        STREAM,
        authorizer_claims=cognito_claims(sub),
    )

    response, body = await serve(trusting, event)

    events = sse_events(body)
    assert response.status_code == 200
    assert [name for name, _ in events] == ["meta", "chat", "chat", "chat", "done"]
    assert upstream_count(stack, client) == 1
    # The authorizer's sub owns the conversation and is the quota's key.
    conversation = events[0][1]["conversation_id"]
    assert item(stack, f"CONV#{conversation}", "META")["owner"] == {"S": sub}
    (quota,) = stack.moto.client("dynamodb").query(
        TableName=stack.names["table"],
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"QUOTA#{sub}"}},
    )["Items"]
    assert quota["requests"] == {"N": "1"}


async def test_the_conversation_is_shown_to_the_same_authorizer_user_only(trusting) -> None:
    sub = f"cognito-{uuid.uuid4()}"
    start = rest_api_event(
        "GET", "/chat?q=Remember+me&conversation=new", STREAM, authorizer_claims=cognito_claims(sub)
    )
    _, body = await serve(trusting, start)
    conversation = sse_events(body)[0][1]["conversation_id"]

    path = f"/conversations/{conversation}"
    mine, history = await serve(
        trusting, rest_api_event("GET", path, authorizer_claims=cognito_claims(sub))
    )
    theirs, _ = await serve(
        trusting, rest_api_event("GET", path, authorizer_claims=cognito_claims("someone-else"))
    )

    assert mine.status_code == 200
    assert json.loads(history)["turns"][0]["question"] == "Remember me"
    assert theirs.status_code == 404


async def test_claims_in_a_function_url_event_are_never_believed(trusting, stack, client) -> None:
    event = with_claims(function_url_event("GET", "/chat?q=Hello"), cognito_claims("x"))

    response, body = await serve(trusting, event)

    assert response.status_code == 401
    assert json.loads(body)["error"]["code"] == "unauthorized"
    assert upstream_count(stack, client) == 0
    # The function URL door keeps the relay's own check: its token's sub is the user.
    target = f"/chat?q=Hello&conversation=new&access_token={stack.token}"
    event = with_claims(function_url_event("GET", target, STREAM), cognito_claims("x"))
    answered, answer = await serve(trusting, event)
    assert answered.status_code == 200
    conversation = sse_events(answer)[0][1]["conversation_id"]
    assert item(stack, f"CONV#{conversation}", "META")["owner"] == {"S": "developer"}


async def test_a_rest_event_without_claims_is_refused_even_with_a_relay_token(
    trusting, stack, client
) -> None:
    event = rest_api_event("GET", f"/chat?q=Hello&access_token={stack.token}")

    response, body = await serve(trusting, event)

    error = json.loads(body)["error"]
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="glm-relay"'
    assert error["code"] == "unauthorized"
    assert "authorizer" in error["message"]
    assert upstream_count(stack, client) == 0


async def test_with_the_setting_off_authorizer_claims_are_ignored(
    not_trusting, stack, client
) -> None:
    claims = cognito_claims(f"cognito-{uuid.uuid4()}")
    without_token = rest_api_event("GET", "/chat?q=Hello", authorizer_claims=claims)
    with_token = rest_api_event(
        "GET",
        f"/chat?q=Hello&conversation=new&access_token={stack.token}",
        STREAM,
        authorizer_claims=claims,
    )

    refused, _ = await serve(not_trusting, without_token)
    answered, body = await serve(not_trusting, with_token)

    assert refused.status_code == 401
    assert answered.status_code == 200
    conversation = sse_events(body)[0][1]["conversation_id"]
    assert item(stack, f"CONV#{conversation}", "META")["owner"] == {"S": "developer"}
    assert upstream_count(stack, client) == 1


async def test_openai_routes_take_the_authorizer_user_too(trusting, stack, client) -> None:
    payload = {"model": "glm-4-flash", "messages": [{"role": "user", "content": "Hi"}]}
    event = rest_api_event(
        "POST",
        "/v1/chat/completions",
        {"Content-Type": "application/json"},
        json.dumps(payload).encode(),
        authorizer_claims=cognito_claims("openai-user"),
    )
    url_event = with_claims(
        function_url_event(
            "POST",
            "/v1/chat/completions",
            {"content-type": "application/json"},
            json.dumps(payload).encode(),
        ),
        cognito_claims("openai-user"),
    )

    response, body = await serve(trusting, event)
    url_response, url_body = await serve(trusting, url_event)

    assert response.status_code == 200
    assert json.loads(body)["object"] == "chat.completion"
    assert url_response.status_code == 401
    assert json.loads(url_body)["error"]["type"] == "authentication_error"
    assert upstream_count(stack, client) == 1


# --- reading the claims ---------------------------------------------------------------------------


def test_the_user_is_the_sub_and_the_expiry_is_read_from_api_gateway_s_date_text() -> None:
    claims = authorizer_identity(cognito_claims("abc"))

    assert claims.sub == "abc"
    assert claims.expires_at == 1773166865  # 2026-03-10T18:21:05Z
    assert authorizer_identity({"sub": "abc", "exp": "1773166865"}).expires_at == 1773166865
    assert authorizer_identity({"sub": "abc"}).expires_at == 0


@pytest.mark.parametrize(
    "claims",
    [None, {}, {"email": "a@example.com"}, {"sub": ""}, {"sub": "a\nb"}, {"sub": "x" * 129}],
    ids=["none", "empty", "no-sub", "empty-sub", "unprintable", "too-long"],
)
def test_claims_without_a_usable_sub_are_refused(claims: dict[str, str] | None) -> None:
    with pytest.raises(AccessDenied):
        authorizer_identity(claims)


def test_the_setting_is_off_unless_set() -> None:
    assert Settings.from_env({}).trust_api_gateway_authorizer is False
    on = Settings.from_env({"TRUST_API_GATEWAY_AUTHORIZER": "true"})
    assert on.trust_api_gateway_authorizer is True
