"""Errors that quote what a caller sent: every one of them reaches the caller as a clear 4xx,
whatever the text holds, and every request the app catches leaves its request line.

JSON can carry an unpaired surrogate (``"\\udc00"``) that UTF-8 cannot: a key or value holding
one must be refused like any other bad field, never crash the handler (a 502 and a function error
in Lambda, with no request line). The cases go over a raw socket to the local function URL; the
fuzz calls the app itself, many bodies a second.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devtools.events import function_url_event
from devtools.stack import DevStack
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import InvocationContext, StreamingResponse, now_ms
from glm_relay.web.app import WebApp
from glm_relay.web.telemetry import Telemetry
from tests.support.app_call import AppOnLoop, app_on_loop, post_json

from .support import chat_records, mint, raw_request

pytestmark = pytest.mark.usefixtures("upstream_log")

TOKEN = mint("hardening-caller-text")
HI = [{"role": "user", "content": "hi"}]


class RequestLines:
    """The request lines an app wrote (``Telemetry.request_done``'s fields), kept in order."""

    def __init__(self, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lines: list[dict[str, Any]] = []
        original = telemetry.request_done

        def request_done(request: Any, **fields: Any) -> None:
            self.lines.append(fields)
            original(request, **fields)

        monkeypatch.setattr(telemetry, "request_done", request_done)


@pytest.fixture
def request_lines(stack: DevStack, monkeypatch: pytest.MonkeyPatch) -> RequestLines:
    assert stack.app is not None
    return RequestLines(stack.app.telemetry, monkeypatch)


SURROGATE_CASES = [
    pytest.param("/chat", b'{"\\udc00": 1}', "unknown_parameter", id="chat-key"),
    pytest.param(
        "/chat",
        b'{"messages": [{"role": "user", "content": "hi"}], "x\\ud800y": 1}',
        "unknown_parameter",
        id="chat-key-among-fields",
    ),
    pytest.param(
        "/chat",
        b'{"messages": [{"role": "user", "content": "hi", "\\udfff": true}]}',
        "invalid_messages",
        id="chat-message-key",
    ),
    pytest.param(
        "/v1/chat/completions",
        b'{"model": "glm-4-flash", "messages": [{"role": "user", "content": "hi"}], "\\udc00": 1}',
        "unknown_parameter",
        id="v1-key",
    ),
    pytest.param(
        "/v1/chat/completions",
        b'{"model": "glm-4-flash", "messages": [{"role": "user", "content": "hi"}], '
        b'"stream_options": {"\\udc00": true}}',
        "unsupported_parameter",
        id="v1-stream-options-key",
    ),
    pytest.param(
        "/v1/chat/completions",
        b'{"model": "glm-4.7-flash", "messages": [{"role": "user", "content": "hi"}], '
        b'"thinking": {"type": "enabled", "\\udc00": 1}}',
        "unsupported_parameter",
        id="v1-thinking-key",
    ),
]


@pytest.mark.parametrize(("target", "body", "code"), SURROGATE_CASES)
def test_a_key_with_an_unpaired_surrogate_is_refused_with_400_and_a_request_line(
    target: str,
    body: bytes,
    code: str,
    stack: DevStack,
    client: httpx.Client,
    request_lines: RequestLines,
) -> None:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

    response = raw_request(stack.url, "POST", target, headers=headers, body=body)

    assert response.status == 400, response.body[:300]
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    error = response.json["error"]
    assert error["code"] == code
    # The key is quoted as its escape, so the caller still sees which field was refused.
    assert "\\ud" in error["message"] or code != "unknown_parameter"
    request_id = response.headers["x-request-id"]
    assert [
        line["outcome"] for line in request_lines.lines if line["request_id"] == request_id
    ] == ["rejected"]
    assert chat_records(stack, client) == []


def test_relay_error_text_is_always_encodable() -> None:
    error = RelayError(
        ErrorCode.UNKNOWN_PARAMETER, "unknown field: \udc00", extra={"param": ["\ud800", 1]}
    )

    assert error.message == "unknown field: \\udc00"
    assert error.extra == {"param": ["\\ud800", 1]}
    assert json.loads(error.to_json())["error"]["message"] == "unknown field: \\udc00"


# --- the app's last resort -----------------------------------------------------------------


async def test_a_failure_while_answering_a_failure_is_a_500_with_a_request_line(
    stack: DevStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An endpoint that fails, in a group whose error format fails too: the app still answers,
    with the relay's own ``internal_error``, and writes the request line."""
    assert stack.app is not None
    app = WebApp(replace(stack.app.settings, require_access_token=False))
    lines = RequestLines(app.telemetry, monkeypatch)
    group = app.router.group_for("/chat")

    def broken_format(request: Any, error: RelayError) -> Any:
        raise UnicodeEncodeError("utf-8", "\udc00", 0, 1, "surrogates not allowed")

    monkeypatch.setattr(group, "errors", broken_format)
    event = function_url_event("POST", "/chat", {"content-type": "application/json"}, b"{}")
    context = InvocationContext(aws_request_id="last-resort-1", deadline_ms=now_ms() + 30_000)

    response = await app.handle(event, context)
    body = b"".join([frame async for frame in response.body])

    assert response.status_code == 500
    assert json.loads(body)["error"]["code"] == "internal_error"
    assert response.headers["X-Request-Id"] == "last-resort-1"
    assert len(lines.lines) == 1
    assert lines.lines[0]["outcome"] == "failed"
    assert lines.lines[0]["error_code"] == "UnicodeEncodeError"


async def test_a_body_that_breaks_after_its_status_is_logged_as_failed(
    stack: DevStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.app is not None
    app = WebApp(replace(stack.app.settings, require_access_token=False))
    lines = RequestLines(app.telemetry, monkeypatch)

    async def breaking_body() -> Any:
        yield b"<html>"
        raise RuntimeError("a bug while streaming")

    async def page(exchange: Any) -> StreamingResponse:
        return StreamingResponse(200, {}, breaking_body())

    [page_route] = [r for r in app.router.group_for("/").routes if r.path == "/"]
    monkeypatch.setattr(page_route, "methods", {"GET": page})
    event = function_url_event("GET", "/")
    context = InvocationContext(aws_request_id="breaks-1", deadline_ms=now_ms() + 30_000)

    response = await app.handle(event, context)
    frames = []
    with pytest.raises(RuntimeError):
        async for frame in response.body:
            frames.append(frame)

    assert frames == [b"<html>"]
    assert [(line["outcome"], line["error_code"]) for line in lines.lines] == [
        ("failed", "RuntimeError")
    ]


# --- fuzzed keys and values ----------------------------------------------------------------

# Any text, and text around an unpaired surrogate (hypothesis leaves those out by default).
PLAIN_TEXT = st.text(max_size=12)
WITH_SURROGATE = st.builds(
    lambda before, surrogate, after: before + surrogate + after,
    st.text(max_size=5),
    st.characters(categories=["Cs"]),
    st.text(max_size=5),
)
ANY_TEXT = st.one_of(PLAIN_TEXT, WITH_SURROGATE)
VALUES = st.one_of(
    ANY_TEXT,
    st.integers(),
    st.booleans(),
    st.lists(ANY_TEXT, max_size=3),
    st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=2),
)
FIELD_CODES = {"unknown_parameter", "unsupported_parameter", "invalid_parameter"}
MESSAGE_CODES = {"invalid_messages", "unsupported_content"}


@pytest.fixture(scope="module")
def fuzz_app(stack: DevStack) -> Iterator[AppOnLoop]:
    yield from app_on_loop(stack)


def answer(app: WebApp, loop: asyncio.AbstractEventLoop, target: str, payload: Any) -> Any:
    status, body = post_json((app, loop), target, payload)
    return status, body["error"]


@settings(
    max_examples=150,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(key=ANY_TEXT, value=VALUES, content=ANY_TEXT, v1=st.booleans())
def test_fuzzed_keys_and_values_get_a_400_that_names_the_field(
    key: str,
    value: Any,
    content: str,
    v1: bool,
    fuzz_app: tuple[WebApp, asyncio.AbstractEventLoop],
    stack: DevStack,
    client: httpx.Client,
) -> None:
    app, loop = fuzz_app
    field = f"zz{key}"  # never a field either route knows: the request is always refused
    message = {"role": "user", "content": content or "hi", field: value}
    target = "/v1/chat/completions" if v1 else "/chat"
    base = {"model": "glm-4-flash"} if v1 else {}

    status, error = answer(app, loop, target, {**base, "messages": HI, field: value})
    assert (status, error["code"]) == (400, "unknown_parameter")
    assert error["message"]

    status, error = answer(app, loop, target, {**base, "messages": [message]})
    assert status == 400 and error["code"] in MESSAGE_CODES | FIELD_CODES, error

    assert chat_records(stack, client) == []
