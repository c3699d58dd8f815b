"""From an open upstream stream to our SSE events, one frame per piece, as soon as it exists.

The event sequence is ``meta``, then ``chat`` / ``reasoning`` / ``tool_call`` in upstream order,
then exactly one terminal event, ``done`` or ``error``, and nothing after it. Between upstream
pieces the relay watches three clocks: the keepalive interval (send a ``:`` comment so proxies and
browsers keep the connection), the upstream idle timeout (a stalled upstream becomes
``upstream_stalled``), and the request deadline (stop before Lambda kills the function).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from glm_relay.errors import RelayError
from glm_relay.sse import KEEPALIVE_FRAME, dumps_data, encode_event
from glm_relay.zhipu import FAILED_FINISH_REASONS, Finish, Piece, UpstreamStream

_DRAIN_SECONDS = 1.0
EVENT_OF_KIND = {"content": "chat", "reasoning": "reasoning"}


@dataclass(slots=True)
class Outcome:
    """How one relayed answer went: what logs, metrics, quotas and conversations need."""

    request_id: str
    model: str
    started: float = field(default_factory=time.monotonic)
    status: str = "streaming"  # then "complete", "error" or "stopped"
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    upstream_id: str | None = None
    error_code: str | None = None
    first_token_ms: float | None = None
    duration_ms: float | None = None
    pieces: int = 0
    attempts: int = 0
    answer: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Clocks:
    """The three limits a relay watches, in seconds (``deadline`` is a monotonic instant)."""

    keepalive: float
    idle: float
    deadline: float


class WireFormat(Protocol):
    """How a relayed answer is written on the wire; the relay loop is the same for all formats."""

    def opening(self) -> bytes | None:
        """The first frame, before any upstream piece (or ``None``)."""

    def piece(self, piece: Piece) -> bytes:
        """The frame of one content, reasoning or tool-call piece."""

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        """The terminal frame of an answer that ended normally."""

    def error(self, error: RelayError) -> bytes:
        """The terminal frame of an answer that failed."""


class EventFramer:
    """Numbers events ``<request-id>:<n>`` and encodes their JSON data."""

    __slots__ = ("_count", "_prefix")

    def __init__(self, request_id: str) -> None:
        self._prefix = request_id + ":"
        self._count = 0

    def frame(self, event: str, data: dict[str, Any]) -> bytes:
        self._count += 1
        return encode_event(event, dumps_data(data), self._prefix + str(self._count))


class RelayEvents:
    """The relay's own SSE events: meta, chat, reasoning, tool_call, then done or error."""

    def __init__(self, request_id: str, meta: dict[str, Any]) -> None:
        self._framer = EventFramer(request_id)
        self._meta = meta

    def opening(self) -> bytes | None:
        return self._framer.frame("meta", self._meta)

    def piece(self, piece: Piece) -> bytes:
        if piece.kind == "tool_call":
            return self._framer.frame("tool_call", piece.value)
        return self._framer.frame(EVENT_OF_KIND[piece.kind], {"content": piece.value})

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        return self._framer.frame(
            "done",
            {
                "finish_reason": finish.finish_reason,
                "usage": finish.usage,
                "model": finish.model or outcome.model,
                "upstream_id": finish.upstream_id,
            },
        )

    def error(self, error: RelayError) -> bytes:
        return self._framer.frame("error", error.event_data())


OnComplete = Callable[[Outcome], Awaitable[None]]


@dataclass(slots=True)
class ChatSession:
    """An upstream stream that has begun, with what its body needs; ``meta`` goes to callers."""

    upstream: UpstreamStream
    outcome: Outcome
    clocks: Clocks
    on_complete: OnComplete
    meta: dict[str, Any]

    def body(self, wire: WireFormat) -> RelayBody:
        """The response body, written in ``wire``'s format."""
        return RelayBody(
            self.upstream, self.outcome, self.clocks, wire, on_complete=self.on_complete
        )


class RelayBody:
    """The response body: an async iterator of frames that owns the upstream stream.

    ``aclose()`` always releases the upstream request, even when iteration never started, and
    the completion callback runs exactly once however the body ends.
    """

    def __init__(
        self,
        upstream: UpstreamStream,
        outcome: Outcome,
        clocks: Clocks,
        wire: WireFormat,
        *,
        on_complete: OnComplete | None = None,
    ) -> None:
        self._upstream = upstream
        self._outcome = outcome
        self._clocks = clocks
        self._wire = wire
        self._on_complete = on_complete
        self._events: AsyncIterator[bytes] | None = None
        self._closed = False
        outcome.attempts = upstream.attempts

    def __aiter__(self) -> RelayBody:
        return self

    async def __anext__(self) -> bytes:
        if self._events is None:
            if self._closed:
                raise StopAsyncIteration
            self._events = self._relay()
        return await anext(self._events)

    async def aclose(self) -> None:
        """Stop now (the client went away): the upstream request is closed at once."""
        if self._events is not None:
            await self._events.aclose()  # type: ignore[attr-defined]
        elif not self._closed:
            self._closed = True
            self._outcome.status = "stopped"
            await self._finish()

    async def _finish(self) -> None:
        await self._upstream.aclose()
        outcome = self._outcome
        outcome.duration_ms = (time.monotonic() - outcome.started) * 1000
        if self._on_complete is not None:
            await self._on_complete(outcome)

    async def _relay(self) -> AsyncIterator[bytes]:
        self._closed = True
        outcome, upstream, clocks, wire = self._outcome, self._upstream, self._clocks, self._wire
        pending: asyncio.Future[bytes] | None = None
        terminal = False
        try:
            opening = wire.opening()
            if opening is not None:
                yield opening
            last_sent = last_data = time.monotonic()
            while not terminal:
                if pending is None:
                    pending = asyncio.ensure_future(upstream.read())
                now = time.monotonic()
                wait = min(last_sent + clocks.keepalive, last_data + clocks.idle, clocks.deadline)
                if not pending.done() and wait > now:
                    await asyncio.wait((pending,), timeout=wait - now)
                if not pending.done():
                    now = time.monotonic()
                    if now >= clocks.deadline:
                        raise RelayError.of(
                            "deadline_exceeded", "the answer did not finish before the deadline"
                        )
                    if now >= last_data + clocks.idle:
                        raise RelayError.of(
                            "upstream_stalled",
                            f"the upstream sent nothing for {clocks.idle:g} seconds",
                        )
                    yield KEEPALIVE_FRAME
                    last_sent = now
                    continue
                data = _result(pending)
                pending = None
                if not data:
                    raise RelayError.of(
                        "upstream_disconnected", "the upstream stream ended before the answer did"
                    )
                last_data = time.monotonic()
                for piece in upstream.parse(data):
                    if piece.kind == "finish":
                        terminal = True
                        yield self._terminal(piece.value)
                        break
                    outcome.pieces += 1
                    if outcome.first_token_ms is None:
                        outcome.first_token_ms = (last_data - outcome.started) * 1000
                    if piece.kind == "content":
                        outcome.answer.append(piece.value)
                    yield wire.piece(piece)
                    last_sent = time.monotonic()
            await _drain(upstream)
        except RelayError as error:
            if not terminal:
                terminal = True
                yield self._failed(error)
        except Exception:
            # A bug must still end the stream with a terminal event that says so.
            if not terminal:
                terminal = True
                yield self._failed(
                    RelayError.of("internal_error", "the relay failed while streaming")
                )
        finally:
            if pending is not None and not pending.done():
                pending.cancel()
            if not terminal:
                outcome.status = "stopped"
            await self._finish()

    def _terminal(self, finish: Finish) -> bytes:
        outcome = self._outcome
        outcome.finish_reason = finish.finish_reason
        outcome.usage = finish.usage
        outcome.upstream_id = finish.upstream_id
        if finish.finish_reason in FAILED_FINISH_REASONS:
            code, message = FAILED_FINISH_REASONS[finish.finish_reason]
            return self._failed(RelayError.of(code, message))
        outcome.status = "complete"
        return self._wire.done(finish, outcome)

    def _failed(self, error: RelayError) -> bytes:
        self._outcome.status = "error"
        self._outcome.error_code = error.code
        return self._wire.error(error)


def _result(pending: asyncio.Future[bytes]) -> bytes:
    """The read's bytes, with transport failures mapped to our codes."""
    import httpx

    try:
        return pending.result()
    except httpx.ReadTimeout:
        raise RelayError.of("upstream_stalled", "the upstream stopped sending") from None
    except httpx.TransportError:
        raise RelayError.of(
            "upstream_disconnected", "the upstream connection broke mid-answer"
        ) from None


async def _drain(upstream: UpstreamStream) -> None:
    """Read to ``[DONE]`` so the pooled connection can be reused; give up quickly."""
    if upstream.finished:
        return
    try:
        async with asyncio.timeout(_DRAIN_SECONDS):
            while not upstream.finished:
                data = await upstream.read()
                if not data:
                    return
                upstream.parse(data)
    except Exception:
        return
