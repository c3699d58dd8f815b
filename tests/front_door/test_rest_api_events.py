"""The API Gateway REST API front door: payload-1.0 events through the same app, with the CORS
that only this front door needs, and the page under its stage path."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from devtools.events import function_url_event, rest_api_event
from devtools.stack import DevStack
from glm_relay.runtime import InvocationContext, StreamingResponse, now_ms
from glm_relay.web.app import WebApp
from mock_upstream.answer import expected_chunks
from tests.support.sse_client import StreamResult, parse_frames

pytestmark = pytest.mark.usefixtures("upstream_log")
ORIGIN = "https://app.example"


@pytest.fixture
async def app(stack: DevStack) -> AsyncIterator[WebApp]:
    assert stack.app is not None
    app = WebApp(stack.app.settings)
    yield app
    await app.services.zhipu.aclose()


async def serve(app: WebApp, event: dict[str, Any]) -> tuple[StreamingResponse, bytes]:
    context = InvocationContext(aws_request_id=str(uuid.uuid4()), deadline_ms=now_ms() + 30_000)
    response = await app.handle(event, context)
    return response, b"".join([frame async for frame in response.body])


def parse_events(raw: str) -> list[tuple[str, Any]]:
    result = StreamResult(200, httpx.Headers())
    parse_frames(raw.encode(), result, 0.0)
    return [(event.event, event.json) for event in result.events]


def sent_to_upstream(stack: DevStack, client: httpx.Client) -> list[dict[str, Any]]:
    assert stack.upstream is not None
    return client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]


async def test_a_rest_api_get_chat_streams_the_answer(app, stack, client) -> None:
    event = rest_api_event(
        "GET",
        f"/chat?q=Rivers+and+lakes+%23chunks%3D12&access_token={stack.token}",
        {"Accept": "text/event-stream"},
    )

    response, body = await serve(app, event)

    events = parse_events(body.decode())
    assert response.status_code == 200
    assert events[0][0] == "meta" and events[-1][0] == "done"
    (sent,) = sent_to_upstream(stack, client)
    text = "".join(data["content"] for name, data in events if name == "chat")
    assert text == "".join(expected_chunks(sent["body"]))
    assert sent["body"]["messages"][-1]["content"] == "Rivers and lakes #chunks=12"


async def test_a_rest_api_post_to_v1_answers_in_openai_shape(app, stack, client) -> None:
    payload = {"model": "glm-4-flash", "messages": [{"role": "user", "content": "Hello"}]}
    event = rest_api_event(
        "POST",
        "/v1/chat/completions",
        {"Content-Type": "application/json", "Authorization": f"Bearer {stack.token}"},
        json.dumps(payload).encode(),
    )

    response, body = await serve(app, event)

    completion = json.loads(body)
    (sent,) = sent_to_upstream(stack, client)
    assert response.status_code == 200
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"] == "".join(expected_chunks(sent["body"]))


async def test_repeated_headers_are_joined_and_the_last_query_value_wins(app, stack) -> None:
    event = rest_api_event(
        "GET",
        "/chat?q=first&q=",
        [("Accept", "text/event-stream"), ("Authorization", f"Bearer {stack.token}")],
    )

    _, body = await serve(app, event)

    # The last q is empty: the same refusal a function URL event gets.
    ((name, data),) = parse_events(body.decode())
    assert (name, data["code"]) == ("error", "missing_prompt")


async def test_preflights_are_answered_by_the_function_for_the_rest_api_only(app) -> None:
    ask = {"Origin": ORIGIN, "Access-Control-Request-Method": "POST"}

    response, body = await serve(app, rest_api_event("OPTIONS", "/v1/chat/completions", ask))
    url_response, _ = await serve(app, function_url_event("OPTIONS", "/v1/chat/completions", ask))

    assert response.status_code == 204 and body == b""
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert response.headers["Access-Control-Allow-Methods"] == "GET, POST"
    allowed = response.headers["Access-Control-Allow-Headers"].split(", ")
    # A page sends its token, its JSON, a reconnect's last id, and a usage plan's API key.
    assert {"authorization", "content-type", "last-event-id", "x-api-key"} <= set(allowed)
    # A function URL answers preflights itself; an OPTIONS that reaches the function is a 405.
    assert url_response.status_code == 405
    assert not any(h.lower().startswith("access-control") for h in url_response.headers)


async def test_a_preflight_from_an_origin_not_allowed_is_refused(stack) -> None:
    assert stack.app is not None
    from dataclasses import replace

    app = WebApp(replace(stack.app.settings, allowed_origins=(ORIGIN,)))
    ask = {"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"}

    response, _ = await serve(app, rest_api_event("OPTIONS", "/chat", ask))
    allowed, _ = await serve(app, rest_api_event("OPTIONS", "/chat", {**ask, "Origin": ORIGIN}))

    assert response.status_code == 403
    assert "Access-Control-Allow-Origin" not in response.headers
    assert allowed.status_code == 204
    assert allowed.headers["Access-Control-Allow-Origin"] == ORIGIN


async def test_answers_to_a_page_expose_the_headers_it_reads(app, stack) -> None:
    headers = {"Origin": ORIGIN, "Accept": "text/event-stream"}

    refused, _ = await serve(app, rest_api_event("GET", "/chat?q=hi", headers))
    url_refused, _ = await serve(app, function_url_event("GET", "/chat?q=hi", headers))

    exposed = refused.headers["Access-Control-Expose-Headers"]
    assert refused.headers["Access-Control-Allow-Origin"] == "*"
    assert {"x-request-id", "retry-after", "www-authenticate"} <= set(exposed.split(", "))
    assert refused.headers["Vary"] == "Origin"
    assert not any(h.lower().startswith("access-control") for h in url_refused.headers)


async def test_the_page_under_a_stage_sends_its_requests_under_the_stage(app) -> None:
    response, page = await serve(app, rest_api_event("GET", "/", stage="api"))
    _, url_page = await serve(app, function_url_event("GET", "/"))

    assert response.status_code == 200
    assert b'<meta name="glm-relay-base" content="/api">' in page
    assert b'<meta name="glm-relay-base" content="">' in url_page
