"""The Zhipu client against ``httpx.MockTransport``: what it sends, how it retries, what it maps.

No sockets and no sleeping: the transport answers in-process, backoff sleeps are recorded, and the
deadline's clock is injected.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from glm_relay.chat.pieces import Finish, ReasoningPiece, TextPiece, ToolCallPiece
from glm_relay.chat.request import ChatRequest
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.upstream import CredentialStore, ZhipuClient

KEY = "key-id.key-secret"
CHAT = ChatRequest(model="glm-4.7", messages=[{"role": "user", "content": "Hi"}], max_tokens=64)


class CountingSource:
    """A secret source that says how often, and how, it was read."""

    def __init__(self, *values: str) -> None:
        self._values = list(values)
        self.reads: list[bool] = []

    async def fetch(self, *, force: bool = False) -> str:
        self.reads.append(force)
        return self._values[min(len(self.reads), len(self._values)) - 1]


def sse(*chunks: dict[str, object]) -> bytes:
    return b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + (
        b"data: [DONE]\n\n"
    )


def streamed(body: bytes) -> httpx.Response:
    """A 200 whose body is read as a stream, as the real transport's is."""
    return httpx.Response(200, stream=httpx.ByteStream(body))


def chunk(delta: dict[str, object], **extra: object) -> dict[str, object]:
    choice: dict[str, object] = {"index": 0, "delta": {"role": "assistant", **delta}}
    if "finish_reason" in extra:
        choice["finish_reason"] = extra.pop("finish_reason")
    return {"id": "up-1", "created": 1, "model": "glm-4.7", "choices": [choice], **extra}


class Harness:
    def __init__(self, answer: Callable[[httpx.Request], httpx.Response], **settings: object):
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []
        self.source = CountingSource(KEY)
        self.now = 100.0

        def handler(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return answer(request)

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.now += seconds

        self.client = ZhipuClient(
            Settings.from_env({}, zhipu_base_url="https://upstream.test/v4", **settings),
            CredentialStore(self.source, mode="raw"),
            transport=httpx.MockTransport(handler),
            sleep=sleep,
            clock=lambda: self.now,
        )

    async def open(self, deadline_in: float = 30.0):
        return await self.client.open_stream(
            CHAT, request_id="req-1", deadline=self.now + deadline_in
        )


def answers(*responses: httpx.Response) -> Callable[[httpx.Request], httpx.Response]:
    queue = list(responses)
    return lambda request: queue.pop(0) if len(queue) > 1 else queue[0]


async def test_a_stream_is_posted_with_the_key_and_decoded_into_typed_pieces() -> None:
    body = sse(
        chunk({"reasoning_content": "hmm"}),
        chunk({"content": "Hel"}),
        chunk({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f"}}]}),
        chunk({"content": "lo"}, finish_reason="stop", usage={"total_tokens": 9}),
    )
    h = Harness(answers(streamed(body)))

    stream = await h.open()
    pieces = list(stream.parse(await stream.read()))

    (sent,) = h.requests
    assert sent.url == "https://upstream.test/v4/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert json.loads(sent.content) == {
        "model": "glm-4.7",
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": 64,
        "request_id": "req-1",
        "stream": True,
    }
    assert [type(p) for p in pieces] == [
        ReasoningPiece,
        TextPiece,
        ToolCallPiece,
        TextPiece,
        Finish,
    ]
    finish = pieces[-1]
    assert isinstance(finish, Finish) and finish.usage == {"total_tokens": 9}
    assert finish.failure is None and stream.attempts == 1


async def test_a_429_is_retried_after_the_delay_it_asks_for() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "2"}, json={"error": {"code": "1302"}})
    h = Harness(answers(limited, streamed(sse())))

    stream = await h.open()

    assert len(h.requests) == 2 and stream.attempts == 2
    assert h.sleeps == [2.0]


async def test_retries_stop_at_the_configured_attempts_with_the_mapped_error() -> None:
    h = Harness(answers(httpx.Response(503, json={"error": {"code": "1305"}})), retry_attempts=3)

    with pytest.raises(RelayError) as raised:
        await h.open()

    assert raised.value.code is ErrorCode.RATE_LIMITED
    assert "1305" in raised.value.message
    assert len(h.requests) == 3 and len(h.sleeps) == 2


async def test_no_retry_would_sleep_past_the_deadline() -> None:
    limited = httpx.Response(429, headers={"Retry-After": "5"}, json={"error": {"code": "1302"}})
    h = Harness(answers(limited))

    with pytest.raises(RelayError) as raised:
        await h.open(deadline_in=3.0)

    assert raised.value.code is ErrorCode.RATE_LIMITED
    assert len(h.requests) == 1 and h.sleeps == []


async def test_a_401_rereads_the_key_once_then_gives_up() -> None:
    h = Harness(answers(httpx.Response(401, json={"error": {"code": "1002"}})))

    with pytest.raises(RelayError) as raised:
        await h.open()

    assert raised.value.code is ErrorCode.UPSTREAM_AUTH_FAILED
    assert h.source.reads == [False, True]
    assert len(h.requests) == 2


async def test_a_refused_request_is_not_retried() -> None:
    h = Harness(answers(httpx.Response(400, json={"error": {"code": 1211, "message": "x"}})))

    with pytest.raises(RelayError) as raised:
        await h.open()

    assert raised.value.code is ErrorCode.UPSTREAM_REJECTED_REQUEST
    assert "(upstream code 1211)" in raised.value.message
    assert len(h.requests) == 1


async def test_connection_failures_are_retried_then_reported_as_unavailable() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    h = Harness(refuse, retry_attempts=2)

    with pytest.raises(RelayError) as raised:
        await h.open()

    assert raised.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert len(h.requests) == 2


async def test_an_error_frame_mid_stream_and_a_failed_finish_are_errors() -> None:
    body = sse(chunk({"content": "a"})) + b'data: {"error": {"code": "1301"}}\n\n'
    h = Harness(answers(streamed(body)))
    stream = await h.open()

    pieces = stream.parse(await stream.read())
    assert next(pieces) == TextPiece("a")  # the frame before the error is not lost
    with pytest.raises(RelayError) as raised:
        next(pieces)
    assert raised.value.code is ErrorCode.CONTENT_FILTERED

    filtered = sse(chunk({}, finish_reason="sensitive"))
    h = Harness(answers(streamed(filtered)))
    stream = await h.open()
    (finish,) = list(stream.parse(await stream.read()))
    assert isinstance(finish, Finish) and finish.failure is not None
    assert finish.failure.code is ErrorCode.CONTENT_FILTERED
