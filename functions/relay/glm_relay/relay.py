"""From an open upstream stream to our SSE events, one frame per piece, as soon as it exists.

The event sequence is ``meta``, then ``chat`` / ``reasoning`` / ``tool_call`` in upstream order,
then exactly one terminal event, ``done`` or ``error``, and nothing after it. Between upstream
pieces the relay watches three clocks: the keepalive interval (send a ``:`` comment so proxies and
browsers keep the connection), the upstream idle timeout (a stalled upstream becomes
``upstream_stalled``), and the request deadline (stop before Lambda kills the function).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from glm_relay.errors import RelayError
from glm_relay.sse import KEEPALIVE_FRAME, SPLITLINES_ONLY, dumps_data, encode_event
from glm_relay.zhipu import FAILED_FINISH_REASONS, Finish, Piece, UpstreamStream

_DRAIN_SECONDS = 1.0
_COMPLETION_GRACE_SECONDS = 1.0
_PACED_GAP_SECONDS = 0.001
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
        return self.frame_json(event, dumps_data(data))

    def frame_json(self, event: str, payload: str) -> bytes:
        """A frame whose data is already JSON (``encode_event`` knows the framing)."""
        self._count += 1
        return encode_event(event, payload, self._prefix + str(self._count))


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
        literal = piece.literal
        if literal is not None and not any(sep in literal for sep in SPLITLINES_ONLY):
            # The upstream's JSON string is already valid JSON: no decode, no re-encode.
            return self._framer.frame_json("chat", '{"content":' + literal + "}")
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

    One pump task per stream reads the upstream, turns pieces into frames and queues them; the
    consumer takes them off the queue, and while the queue is empty waits on a single future with
    one timer for the nearest of the three clocks. No task or wait set is created per chunk.
    ``aclose()`` always releases the upstream request, even when iteration never started, and the
    completion callback runs exactly once however the body ends.
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
        self._frames: deque[bytes] = deque()
        self._pump_task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False  # the terminal frame is queued: nothing may follow it
        self._finished = False
        self._last_sent = self._last_data = time.monotonic()

    def __aiter__(self) -> RelayBody:
        return self

    async def __anext__(self) -> bytes:
        if self._pump_task is None:
            self._pump_task = asyncio.ensure_future(self._pump())
            opening = self._wire.opening()
            if opening is not None:
                return opening
        frames = self._frames
        while not frames:
            if self._ended or self._finished:
                await self._finish()
                raise StopAsyncIteration
            await self._wait()
        self._last_sent = time.monotonic()
        return frames.popleft()

    async def aclose(self) -> None:
        """Stop now (the client went away): the upstream request is closed at once."""
        if not self._ended:
            self._ended = True
            self._outcome.status = "stopped"
        await self._finish(drain=False)

    async def _wait(self) -> None:
        """Sleep until a frame is queued or the nearest clock runs out, then act on the clock."""
        clocks = self._clocks
        now = time.monotonic()
        wake_at = min(self._last_sent + clocks.keepalive, self._last_data + clocks.idle)
        wake_at = min(wake_at, clocks.deadline)
        if wake_at > now:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            timer = asyncio.get_running_loop().call_later(wake_at - now, _wake, waiter)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if self._frames or self._ended:
                return
            now = time.monotonic()
        if now >= clocks.deadline:
            self._fail(RelayError.of("deadline_exceeded", "the answer did not finish in time"))
        elif now >= self._last_data + clocks.idle:
            message = f"the upstream sent nothing for {clocks.idle:g} seconds"
            self._fail(RelayError.of("upstream_stalled", message))
        elif now >= self._last_sent + clocks.keepalive:
            self._frames.append(KEEPALIVE_FRAME)

    def _fail(self, error: RelayError) -> None:
        """End the stream with ``error`` (the pump is stopped when the body finishes)."""
        if not self._ended:
            self._frames.append(self._failed(error))
            self._ended = True

    async def _pump(self) -> None:
        outcome, upstream, wire, frames = self._outcome, self._upstream, self._wire, self._frames
        try:
            while not self._ended:
                data = await upstream.read()
                if not data:
                    raise RelayError.of(
                        "upstream_disconnected", "the upstream stream ended before the answer did"
                    )
                now = time.monotonic()
                paced = now - self._last_data > _PACED_GAP_SECONDS
                self._last_data = now
                for piece in upstream.parse(data):
                    if self._ended:
                        break
                    if piece.kind == "finish":
                        frames.append(self._terminal(piece.value))
                        self._ended = True
                        break
                    outcome.pieces += 1
                    if outcome.first_token_ms is None:
                        outcome.first_token_ms = (now - outcome.started) * 1000
                    if piece.kind == "content":
                        outcome.answer.append(piece.value)
                    frames.append(wire.piece(piece))
                if frames:
                    self._wake()
                    if paced:
                        # The upstream is pacing us (a model writing tokens): let the writer send
                        # these frames before this task reads again, since httpx's next read
                        # re-registers the socket with the selector (a system call) that would
                        # otherwise sit between a chunk's arrival and its departure. Data that
                        # arrives back to back is better served by reading on.
                        await asyncio.sleep(0)
        except RelayError as error:
            self._fail(error)
        except Exception:
            # A bug must still end the stream with a terminal event that says so.
            self._fail(RelayError.of("internal_error", "the relay failed while streaming"))
        finally:
            self._wake()
        if outcome.status == "complete":
            await _drain(upstream)

    def _wake(self) -> None:
        if self._waiter is not None:
            _wake(self._waiter)

    async def _finish(self, *, drain: bool = True) -> None:
        if self._finished:
            return
        self._finished = True
        pump = self._pump_task
        if pump is not None and not pump.done():
            if drain and self._outcome.status == "complete":
                # Let the pump read the body to its end, so the connection goes back to the pool.
                await asyncio.wait((pump,), timeout=_DRAIN_SECONDS)
            pump.cancel()
            with contextlib.suppress(BaseException):
                await pump
        await self._upstream.aclose()
        outcome = self._outcome
        outcome.duration_ms = (time.monotonic() - outcome.started) * 1000
        if self._on_complete is not None:
            # Shielded: a client that leaves now must not cut the bookkeeping short.
            await asyncio.shield(asyncio.ensure_future(self._complete(outcome)))

    async def _complete(self, outcome: Outcome) -> None:
        """Run the completion callback once, bounded by the deadline (plus a second: the margin
        before Lambda's own deadline is larger), and never let it break a finished answer."""
        assert self._on_complete is not None
        allowed = max(self._clocks.deadline - time.monotonic(), 0.0) + _COMPLETION_GRACE_SECONDS
        with contextlib.suppress(Exception):
            async with asyncio.timeout(allowed):
                await self._on_complete(outcome)

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


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def _drain(upstream: UpstreamStream) -> None:
    """Read to the end of the body so the pooled connection can be reused (``_finish`` bounds
    how long it may take)."""
    with contextlib.suppress(Exception):
        while await upstream.read():
            pass
