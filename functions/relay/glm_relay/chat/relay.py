"""From an open answer stream to frames on the wire, one frame per piece, as soon as it exists.

The wire format (the front end's) writes an opening frame, one frame per piece in upstream order,
then exactly one terminal frame, ``done`` or ``error``, and nothing after it. Between pieces the
relay watches three clocks: the keepalive interval (a frame that keeps proxies and browsers from
closing an idle connection), the upstream idle timeout (a stalled upstream becomes
``upstream_stalled``), and the request deadline (stop before Lambda kills the function).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from glm_relay.chat.bookkeeping import LEFTOVER_SECONDS, Jobs, settle
from glm_relay.chat.clock import LOOP_CLOCK, Clock
from glm_relay.chat.pieces import AnswerStream, Finish, Piece, TextPiece, delivered_chars
from glm_relay.errors import ErrorCode, RelayError

_DRAIN_SECONDS = 1.0
_COMPLETION_GRACE_SECONDS = 1.0
_PACED_GAP_SECONDS = 0.001


@dataclass(slots=True)
class Outcome:
    """How one relayed answer went: what logs, metrics, quotas and conversations need."""

    request_id: str
    model: str
    started: float
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
    # Characters of everything delivered (text, reasoning, tool-call arguments): what an answer
    # that ended without the upstream's usage is charged by (chat/prices.py: answer_usage).
    delivered_chars: int = 0
    # What the upstream's usage costs, in ``currency`` (set with the terminal frame).
    cost: float | None = None
    currency: str = ""
    deferred: list[str] = field(default_factory=list)  # bookkeeping left to run after the body


@dataclass(frozen=True, slots=True)
class Clocks:
    """The limits a relay watches, in seconds (``deadline`` is an instant on the clock), and how
    long the body waits for the bookkeeping after the terminal frame."""

    keepalive: float
    idle: float
    deadline: float
    bookkeeping: float = 1.0


class WireFormat(Protocol):
    """How a relayed answer is written on the wire; the relay loop is the same for all formats."""

    def opening(self) -> bytes | None:
        """The first frame, before any upstream piece (or ``None``)."""

    def piece(self, piece: Piece) -> bytes:
        """The frame of one piece (may be empty when the format shows nothing for it)."""

    def keepalive(self) -> bytes:
        """A frame that carries nothing, sent after a silence."""

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        """The terminal frame of an answer the upstream finished. ``finish.failure`` is set when
        its reason means the answer was cut short (``outcome.status`` is then ``error``): the
        format writes that as an error, or as the finish reason its callers expect."""

    def error(self, error: RelayError) -> bytes:
        """The terminal frame of an answer that failed."""


class FrameTap(Protocol):
    """Sees every frame of an answer but keepalives, in order: what records a resumable stream."""

    def frame(self, frame: bytes) -> None:
        """A frame as it is made (must not block: the stream waits for it)."""

    async def end(self, terminal: bytes) -> None:
        """The terminal frame; returns once the stream is recorded (runs with the bookkeeping)."""


OnComplete = Callable[[Outcome], Jobs]
"""The answer's bookkeeping, as named pieces of work (``chat/bookkeeping.py``)."""
OnLost = Callable[[Outcome, list[str]], None]
"""Told which pieces of the bookkeeping failed or never finished."""


class RelayBody:
    """The response body: an async iterator of frames that owns the answer stream.

    One pump task per stream reads the upstream, turns pieces into frames and queues them; the
    consumer takes them off the queue, and while the queue is empty waits on a single future with
    one timer for the nearest of the three clocks. No task or wait set is created per chunk.
    ``aclose()`` always releases the upstream request, even when iteration never started, and the
    completion callback runs exactly once however the body ends.
    """

    def __init__(
        self,
        upstream: AnswerStream,
        outcome: Outcome,
        clocks: Clocks,
        wire: WireFormat,
        *,
        on_complete: OnComplete | None = None,
        on_lost: OnLost | None = None,
        clock: Clock = LOOP_CLOCK,
    ) -> None:
        self._upstream = upstream
        self._outcome = outcome
        self._clocks = clocks
        self._wire = wire
        self._on_complete = on_complete
        self._on_lost = on_lost
        self._clock = clock
        self._frames: deque[bytes] = deque()
        self._tap: FrameTap | None = None
        self._terminal_frame: bytes | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False  # the terminal frame is queued: nothing may follow it
        self._finished = False
        self._last_sent = self._last_data = clock.now()

    @property
    def outcome(self) -> Outcome:
        """How the answer went so far (final once the body has ended)."""
        return self._outcome

    def record(self, tap: FrameTap) -> None:
        """Give every frame but keepalives to ``tap`` too (call before iterating)."""
        self._tap = tap

    def __aiter__(self) -> RelayBody:
        return self

    async def __anext__(self) -> bytes:
        if self._pump_task is None:
            self._pump_task = asyncio.ensure_future(self._pump())
            opening = self._wire.opening()
            if opening is not None:
                if self._tap is not None:
                    self._tap.frame(opening)
                return opening
        frames = self._frames
        while not frames:
            if self._ended or self._finished:
                await self._finish()
                raise StopAsyncIteration
            await self._wait()
        self._last_sent = self._clock.now()
        return frames.popleft()

    async def aclose(self) -> None:
        """Stop now (the client went away): the upstream request is closed at once."""
        if not self._ended:
            self._ended = True
            self._outcome.status = "stopped"
        await self._finish(drain=False)

    async def _wait(self) -> None:
        """Sleep until a frame is queued or the nearest clock runs out, then act on the clock."""
        clocks, clock = self._clocks, self._clock
        now = clock.now()
        wake_at = min(self._last_sent + clocks.keepalive, self._last_data + clocks.idle)
        wake_at = min(wake_at, clocks.deadline)
        if wake_at > now:
            waiter = self._waiter = asyncio.get_running_loop().create_future()
            timer = clock.call_later(wake_at - now, self._wake)
            try:
                await waiter
            finally:
                timer.cancel()
                self._waiter = None
            if self._frames or self._ended:
                return
            now = clock.now()
        if now >= clocks.deadline:
            self._fail(RelayError(ErrorCode.DEADLINE_EXCEEDED, "the answer did not finish in time"))
        elif now >= self._last_data + clocks.idle:
            message = f"the upstream sent nothing for {clocks.idle:g} seconds"
            self._fail(RelayError(ErrorCode.UPSTREAM_STALLED, message))
        elif now >= self._last_sent + clocks.keepalive:
            self._frames.append(self._wire.keepalive())

    def _fail(self, error: RelayError) -> None:
        """End the stream with ``error`` (the pump is stopped when the body finishes)."""
        if not self._ended:
            self._end_with(self._failed(error))

    def _end_with(self, terminal: bytes) -> None:
        self._frames.append(terminal)
        self._terminal_frame = terminal
        self._ended = True

    async def _pump(self) -> None:
        outcome, upstream, wire, frames = self._outcome, self._upstream, self._wire, self._frames
        clock, tap = self._clock, self._tap
        try:
            while not self._ended:
                data = await upstream.read()
                if not data:
                    raise RelayError(
                        ErrorCode.UPSTREAM_DISCONNECTED,
                        "the upstream stream ended before the answer did",
                    )
                now = clock.now()
                paced = now - self._last_data > _PACED_GAP_SECONDS
                self._last_data = now
                for piece in upstream.parse(data):
                    if self._ended:
                        break
                    if isinstance(piece, Finish):
                        self._end_with(self._terminal(piece))
                        break
                    outcome.pieces += 1
                    outcome.delivered_chars += delivered_chars(piece)
                    if outcome.first_token_ms is None:
                        outcome.first_token_ms = (now - outcome.started) * 1000
                    if isinstance(piece, TextPiece):
                        outcome.answer.append(piece.text)
                    frame = wire.piece(piece)
                    if frame:
                        frames.append(frame)
                        if tap is not None:
                            tap.frame(frame)
                if frames:
                    self._wake()
                    if paced:
                        # The upstream is pacing us (a model writing tokens): let the writer send
                        # these frames before this task reads again, since the next read (down
                        # through httpx and the pool to a future that waits for bytes) would
                        # otherwise sit between a chunk's arrival and its departure. Data that
                        # arrives back to back is better served by reading on.
                        await asyncio.sleep(0)
        except RelayError as error:
            self._fail(error)
        except Exception:
            # A bug must still end the stream with a terminal event that says so.
            self._fail(RelayError(ErrorCode.INTERNAL_ERROR, "the relay failed while streaming"))
        finally:
            self._wake()
        if outcome.status == "complete":
            await _drain(upstream)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

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
        outcome.duration_ms = (self._clock.now() - outcome.started) * 1000
        if self._on_complete is not None or self._tap is not None:
            # Shielded: a client that leaves now must not cut the bookkeeping short.
            await asyncio.shield(asyncio.ensure_future(self._complete(outcome)))

    async def _complete(self, outcome: Outcome) -> None:
        """Record the terminal frame and run the completion callback, once, together. The body
        waits for them ``clocks.bookkeeping`` seconds at most (never past the deadline plus a
        second: the margin before Lambda's own deadline is larger); what is left runs on in the
        background (``chat/bookkeeping.py``). Neither may break a finished answer."""
        clocks, clock = self._clocks, self._clock
        allowed = max(clocks.deadline - clock.now(), 0.0) + _COMPLETION_GRACE_SECONDS
        jobs: dict[str, Awaitable[None]] = {}
        if self._tap is not None:
            terminal = self._terminal_frame
            if terminal is None:
                # Stopped before its end: the record says so, so a resumed stream ends too.
                stopped = RelayError(ErrorCode.ANSWER_STOPPED, "the answer stopped before its end")
                terminal = self._wire.error(stopped)
            jobs["stream_record"] = self._tap.end(terminal)
        if self._on_complete is not None:
            with contextlib.suppress(Exception):
                jobs.update(self._on_complete(outcome))
        on_lost = self._on_lost

        def lost(parts: list[str]) -> None:
            if on_lost is not None:
                with contextlib.suppress(Exception):
                    on_lost(outcome, parts)

        outcome.deferred = await settle(
            jobs,
            wait=min(clocks.bookkeeping, allowed),
            limit=max(allowed, LEFTOVER_SECONDS),
            on_lost=lost,
            clock=clock,
        )

    def _terminal(self, finish: Finish) -> bytes:
        outcome = self._outcome
        outcome.finish_reason = finish.finish_reason
        outcome.usage = finish.usage
        outcome.upstream_id = finish.upstream_id
        if finish.failure is not None:
            outcome.status = "error"
            outcome.error_code = finish.failure.code
        else:
            outcome.status = "complete"
        return self._wire.done(finish, outcome)

    def _failed(self, error: RelayError) -> bytes:
        self._outcome.status = "error"
        self._outcome.error_code = error.code
        return self._wire.error(error)


async def _drain(upstream: AnswerStream) -> None:
    """Read to the end of the body so the pooled connection can be reused (``_finish`` bounds
    how long it may take)."""
    with contextlib.suppress(Exception):
        while await upstream.read():
            pass
