"""Every fault of the fake upstream, driven through the function end to end.

For each fault a browser-shaped ``GET /chat`` (``Accept: text/event-stream``) must end with exactly
one terminal event, ``done`` or ``error``, with the right code or finish reason and nothing after
it, having made the right number of upstream attempts; a JSON client's ``POST /chat`` must get the
right HTTP status for failures known before the stream starts. The session stack has a 1.5 s
upstream idle timeout, 0.5 s keepalives, tiny retry backoff and 5 s upstream holds.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devtools.local_url import FunctionUrlConfig
from devtools.stack import DevStack
from mock_upstream.answer import expected_chunks, expected_reasoning_chunks, expected_tool_call
from tests.support.sse_client import StreamResult, read_stream

from .support import assert_single_terminal_last, chat_records, mint, serving, variant_app

pytestmark = pytest.mark.usefixtures("upstream_log")

TOKEN = mint("hardening-faults")
IDLE_TIMEOUT = 1.5  # the session stack's upstream idle timeout
UPSTREAM_HOLD = 5.0  # the session upstream's slow_headers / stall hold
AFTER = 3  # pieces before a mid-stream failure


def chat_url(stack: DevStack, question: str) -> str:
    return f"{stack.url}/chat?q={quote(question)}&access_token={TOKEN}"


@dataclass(frozen=True)
class Row:
    """One fault, what the browser must see, and how many upstream requests it takes."""

    id: str
    directives: str
    terminal: str  # "done" or "error"
    outcome: str  # the error code, or the done event's finish_reason
    attempts: int
    opened: bool  # whether the stream began (meta first) or the upstream refused up front
    statuses: tuple[int, ...] = ()  # what the upstream answered each attempt, when it matters

    def question(self) -> str:
        # Six pieces keep the rows quick; `unicode` keeps all eighteen of its awkward pieces.
        size = "" if self.id == "unicode" else " #chunks=6"
        return f"fault matrix {self.id.replace('_', ' ')} {self.directives}{size}"


# fmt: off
ROWS = [
    # Refusals before any byte: one `error` event in place of the stream.
    Row("auth", "#fault=auth", "error", "upstream_auth_failed", 2, False, (401, 401)),
    Row("expired", "#fault=expired", "error", "upstream_auth_failed", 2, False, (401, 401)),
    Row("rate_limit", "#fault=rate_limit", "error", "rate_limited", 3, False, (429,) * 3),
    Row("rate_limit_once", "#fault=rate_limit #times=1", "done", "stop", 2, True, (429, 200)),
    Row("balance", "#fault=balance", "error", "insufficient_balance", 1, False, (429,)),
    Row("too_long", "#fault=too_long", "error", "context_length_exceeded", 1, False, (400,)),
    Row("sensitive_input", "#fault=sensitive_input", "error", "content_filtered", 1, False),
    Row("server_error", "#fault=server_error", "error", "upstream_error", 3, False, (500,) * 3),
    Row("unavailable", "#fault=unavailable", "error", "upstream_unavailable", 3, False),
    Row(
        "unavailable_twice", "#fault=unavailable #times=2", "done", "stop", 3, True,
        (503, 503, 200),
    ),
    Row(
        "unavailable_thrice", "#fault=unavailable #times=3", "error", "upstream_unavailable", 3,
        False, (503,) * 3,
    ),
    Row("slow_headers", "#fault=slow_headers", "error", "upstream_stalled", 1, False),
    Row("slow_headers_brief", "#fault=slow_headers #hold=300", "done", "stop", 1, True),
    # Failures after the stream began: meta, AFTER chat events, then the error.
    Row("stall", f"#fault=stall #after={AFTER}", "error", "upstream_stalled", 1, True),
    Row("stall_brief", "#fault=stall #hold=1000 #after=2", "done", "stop", 1, True),
    Row("drop", f"#fault=drop #after={AFTER}", "error", "upstream_disconnected", 1, True),
    Row("malformed", f"#fault=malformed #after={AFTER}", "error", "upstream_protocol_error", 1,
        True),
    # The error frame carries Zhipu code 1234 (a network error while generating).
    Row("error_frame", f"#fault=error_frame #after={AFTER}", "error", "upstream_error", 1, True),
    Row("sensitive", f"#fault=sensitive #after={AFTER}", "error", "content_filtered", 1, True),
    Row(
        "network_error", f"#fault=network_error #after={AFTER}", "error",
        "upstream_network_error", 1, True,
    ),
    Row("length", f"#fault=length #after={AFTER}", "done", "length", 1, True),
    # Shapes: successful answers of a particular form.
    Row("tool_call", "#fault=tool_call", "done", "tool_calls", 1, True),
    Row("reasoning", "#fault=reasoning", "done", "stop", 1, True),
    Row("unicode", "#fault=unicode", "done", "stop", 1, True),
    Row("crlf", "#fault=crlf", "done", "stop", 1, True),
    Row("reasoning_then_drop", "#fault=reasoning,drop #after=2", "error",
        "upstream_disconnected", 1, True),
]
# fmt: on
MIDSTREAM = {"stall", "drop", "malformed", "error_frame", "sensitive", "network_error", "length"}


@pytest.mark.parametrize("row", ROWS, ids=[r.id for r in ROWS])
def test_upstream_fault_ends_the_stream_with_one_terminal_event(
    row: Row, stack: DevStack, client: httpx.Client
) -> None:
    started = time.monotonic()

    result = read_stream(client, "GET", chat_url(stack, row.question()))

    elapsed = time.monotonic() - started
    records = chat_records(stack, client)
    assert result.status == 200
    assert result.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert_single_terminal_last(result)
    terminal = result.terminal.json
    assert result.terminal.event == row.terminal, terminal
    if row.terminal == "error":
        assert terminal["code"] == row.outcome, terminal
        assert terminal["message"] and isinstance(terminal["retryable"], bool)
    else:
        assert terminal["finish_reason"] == row.outcome, terminal
    assert len(records) == row.attempts, [(r["status"], r["faults"]) for r in records]
    if row.statuses:
        assert tuple(r["status"] for r in records) == row.statuses
    if row.opened:
        assert result.names[0] == "meta"
        assert result.events[0].json["request_id"] == result.headers["x-request-id"]
    else:
        assert result.names == ["error"], "a refusal before the stream is its only event"
    _check_content(row, result, records[-1]["body"])
    _check_timing(row, result, elapsed)


def _check_content(row: Row, result: StreamResult, sent: dict[str, Any]) -> None:
    chunks = expected_chunks(sent)
    name = row.id
    if name in MIDSTREAM or name == "reasoning_then_drop":
        # A prefix of the answer, exactly the pieces sent before the failure.
        reasoning = expected_reasoning_chunks(sent)
        after = 2 if name == "reasoning_then_drop" else AFTER
        got_reasoning = [e.json["content"] for e in result.events if e.event == "reasoning"]
        assert got_reasoning == reasoning[:after]
        assert result.text == "".join(chunks[: max(0, after - len(reasoning))])
        assert (
            result.names[1 : 1 + after]
            == (["reasoning"] * len(reasoning) + ["chat"] * after)[:after]
        )
    elif name == "tool_call":
        calls = [e.json for e in result.events if e.event == "tool_call"]
        assert calls == [expected_tool_call(sent)]
        assert result.names == ["meta", "tool_call", "done"]
    elif name == "reasoning":
        names = result.names
        reasoning = [e.json["content"] for e in result.events if e.event == "reasoning"]
        assert reasoning == expected_reasoning_chunks(sent) and reasoning
        assert names.index("chat") > max(i for i, n in enumerate(names) if n == "reasoning")
        assert result.text == "".join(chunks)
    elif row.terminal == "done":
        assert result.text == "".join(chunks)
        assert [e.json["content"] for e in result.events if e.event == "chat"] == chunks
    if name == "unicode":
        assert "\r\n" in "".join(chunks) and "data: [DONE]" in result.text


def _check_timing(row: Row, result: StreamResult, elapsed: float) -> None:
    if row.id == "slow_headers":
        # Given up after the idle timeout, well before the upstream would have answered.
        assert IDLE_TIMEOUT * 0.9 <= elapsed < UPSTREAM_HOLD - 0.5, elapsed
    if row.id == "stall":
        assert result.comments, "no keepalive while the upstream was silent"
        assert set(result.comments) == {"keepalive"}
        last_chat = max(e.received_at for e in result.events if e.event == "chat")
        silence = result.terminal.received_at - last_chat
        assert IDLE_TIMEOUT * 0.9 <= silence < UPSTREAM_HOLD - 0.5, silence
    if row.id == "stall_brief":
        assert result.comments, "no keepalive during a one-second silence"


# --- JSON clients: failures known before streaming are HTTP statuses -------------------------


@dataclass(frozen=True)
class PostRow:
    id: str
    directives: str
    status: int
    code: str
    attempts: int
    retry_after: str | None = None


# fmt: off
POST_ROWS = [
    PostRow("rate_limit", "#fault=rate_limit", 429, "rate_limited", 3),
    PostRow("rate_limit_retry_after", "#fault=rate_limit #retry_after=1", 429, "rate_limited", 3,
            "1"),
    PostRow("unavailable_retry_after", "#fault=unavailable #retry_after=1", 503,
            "upstream_unavailable", 3, "1"),
    PostRow("auth", "#fault=auth", 502, "upstream_auth_failed", 2),
    PostRow("expired", "#fault=expired", 502, "upstream_auth_failed", 2),
    PostRow("unavailable", "#fault=unavailable", 503, "upstream_unavailable", 3),
    PostRow("balance", "#fault=balance", 503, "insufficient_balance", 1),
    PostRow("too_long", "#fault=too_long", 400, "context_length_exceeded", 1),
    PostRow("sensitive_input", "#fault=sensitive_input", 400, "content_filtered", 1),
    PostRow("server_error", "#fault=server_error", 502, "upstream_error", 3),
    PostRow("slow_headers", "#fault=slow_headers", 504, "upstream_stalled", 1),
]
# fmt: on


@pytest.mark.parametrize("row", POST_ROWS, ids=[r.id for r in POST_ROWS])
def test_json_client_gets_an_upstream_refusal_as_an_http_status(
    row: PostRow, stack: DevStack, client: httpx.Client
) -> None:
    question = f"post matrix {row.id.replace('_', ' ')} {row.directives}"
    response = client.post(
        f"{stack.url}/chat",
        json={"messages": [{"role": "user", "content": question}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert response.status_code == row.status, response.text
    assert response.headers["content-type"] == "application/json; charset=utf-8"
    error = response.json()["error"]
    assert error["code"] == row.code
    # Zhipu's own wording is never passed on, its code may be.
    assert "Too many" not in error["message"] and "token is invalid" not in error["message"]
    assert response.headers.get("retry-after") == row.retry_after
    assert len(chat_records(stack, client)) == row.attempts


def test_json_client_gets_a_mid_stream_failure_as_an_error_event(
    stack: DevStack, client: httpx.Client
) -> None:
    result = read_stream(
        client,
        "POST",
        f"{stack.url}/chat",
        json={"messages": [{"role": "user", "content": "post drop #fault=drop #after=2"}]},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )

    assert result.status == 200
    assert_single_terminal_last(result)
    assert result.names == ["meta", "chat", "chat", "error"]
    assert result.terminal.json["code"] == "upstream_disconnected"


# --- the key rotated in Secrets Manager and at the upstream ---------------------------------


def test_rotated_key_is_picked_up_after_one_upstream_401(
    stack: DevStack, client: httpx.Client
) -> None:
    assert stack.upstream is not None
    old_id, new_key = stack.api_key.split(".")[0], "rotatedid.R0tatedSecretHalf"
    warm = read_stream(client, "GET", chat_url(stack, "rotation warm up #chunks=2"))
    assert warm.terminal.event == "done"
    stack.rotate_api_key(new_key)
    client.put(f"{stack.upstream.origin}/_mock/api-key", json={"api_key": new_key})
    client.delete(f"{stack.upstream.origin}/_mock/requests")
    try:
        rotated = read_stream(client, "GET", chat_url(stack, "after rotation #chunks=3"))
        records = chat_records(stack, client)
    finally:
        client.put(f"{stack.upstream.origin}/_mock/api-key", json={"api_key": stack.api_key})
        stack.rotate_api_key(stack.api_key)
        back = read_stream(client, "GET", chat_url(stack, "rotation restored #chunks=2"))

    assert_single_terminal_last(rotated)
    assert rotated.terminal.event == "done"
    assert rotated.text == "".join(expected_chunks(records[-1]["body"]))
    assert [(r["status"], r["jwt_claims"]["api_key"]) for r in records] == [
        (401, old_id),
        (200, "rotatedid"),
    ]
    assert back.terminal.event == "done"


# --- the function's own deadline ------------------------------------------------------------

FUNCTION_TIMEOUT = 4.0
DEADLINE_MARGIN = 2.0


@pytest.fixture(scope="module")
def short_timeout_url(stack: DevStack) -> Iterator[str]:
    """The function with a 4 s timeout (deadline 2 s in) and a long idle timeout."""
    app = variant_app(
        stack, deadline_margin_ms=int(DEADLINE_MARGIN * 1000), idle_timeout_seconds=10.0
    )
    with serving(app, FunctionUrlConfig(timeout_seconds=FUNCTION_TIMEOUT)) as url:
        yield url


def _wait_until_upstream_released(stack: DevStack, client: httpx.Client) -> dict[str, Any]:
    limit = time.monotonic() + 3
    while True:
        record = chat_records(stack, client)[-1]
        if record["outcome"] not in ("pending", "open") or time.monotonic() > limit:
            return record
        time.sleep(0.05)


def test_slow_answer_ends_with_deadline_exceeded_before_the_function_timeout(
    short_timeout_url: str, stack: DevStack, client: httpx.Client
) -> None:
    started = time.monotonic()
    result = read_stream(
        client,
        "GET",
        f"{short_timeout_url}/chat?q={quote('deadline slow #chunks=60 #delay=100')}"
        f"&access_token={TOKEN}",
    )
    elapsed = time.monotonic() - started

    assert_single_terminal_last(result)
    assert result.terminal.event == "error"
    assert result.terminal.json["code"] == "deadline_exceeded"
    assert result.terminal.json["retryable"] is True
    assert 5 < result.names.count("chat") < 60
    assert FUNCTION_TIMEOUT - DEADLINE_MARGIN - 0.3 <= elapsed < FUNCTION_TIMEOUT, elapsed
    # The upstream request is closed, not left running until the answer ends.
    assert _wait_until_upstream_released(stack, client)["outcome"] == "client_gone"


def test_upstream_that_answers_after_the_deadline_is_reported_as_deadline_exceeded(
    short_timeout_url: str, stack: DevStack, client: httpx.Client
) -> None:
    started = time.monotonic()
    result = read_stream(
        client,
        "GET",
        f"{short_timeout_url}/chat?q={quote('deadline headers #fault=slow_headers #hold=4500')}"
        f"&access_token={TOKEN}",
    )
    elapsed = time.monotonic() - started

    assert result.names == ["error"]
    assert result.terminal.json["code"] == "deadline_exceeded"
    assert FUNCTION_TIMEOUT - DEADLINE_MARGIN - 0.3 <= elapsed < FUNCTION_TIMEOUT, elapsed
    assert len(chat_records(stack, client)) == 1
