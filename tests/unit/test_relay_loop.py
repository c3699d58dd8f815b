"""The relay loop's state machine, driven by a fake clock: no sleeping, no sockets.

Each test holds the upstream silent or feeds it pieces by hand, moves the clock, and asserts the
frames the body yields, the one terminal frame, and what the completion callback saw.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from glm_relay.chat.bookkeeping import LEFTOVER_SECONDS
from glm_relay.chat.clock import sleep
from glm_relay.chat.pieces import Finish, Piece, ReasoningPiece, TextPiece
from glm_relay.chat.relay import Clocks, Outcome, RelayBody
from glm_relay.errors import ErrorCode, RelayError
from tests.support.fake_clock import FakeClock, settle

KEEPALIVE, IDLE = 15.0, 60.0


class FakeAnswer:
    """An answer stream fed by the test: each ``send`` is one read's worth of pieces."""

    attempts = 1

    def __init__(self) -> None:
        self._reads: asyncio.Queue[list[Piece | Finish] | None] = asyncio.Queue()
        self._current: list[Piece | Finish] = []
        self.closed = False

    def send(self, *pieces: Piece | Finish) -> None:
        self._reads.put_nowait(list(pieces))

    def end(self) -> None:
        self._reads.put_nowait(None)

    async def read(self) -> bytes:
        pieces = await self._reads.get()
        if pieces is None:
            return b""
        self._current = pieces
        return b"."

    def parse(self, data: bytes) -> list[Piece | Finish]:
        return self._current

    async def aclose(self) -> None:
        self.closed = True


class Recorded:
    """A wire format that names what it was asked to write."""

    def opening(self) -> bytes | None:
        return b"open"

    def piece(self, piece: Piece) -> bytes:
        return f"{type(piece).__name__}:{getattr(piece, 'text', '')}".encode()

    def keepalive(self) -> bytes:
        return b"keepalive"

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        return f"done:{finish.finish_reason}".encode()

    def error(self, error: RelayError) -> bytes:
        return f"error:{error.code}".encode()


class Harness:
    """A body on a fake clock; its bookkeeping (``accounting``) takes ``accounting_takes``
    seconds and fails when ``accounting_fails``; ``lost`` keeps what it was told was lost."""

    def __init__(self, deadline_in: float = 600.0) -> None:
        self.clock = FakeClock()
        self.answer = FakeAnswer()
        self.completed: list[Outcome] = []
        self.lost: list[list[str]] = []
        self.accounting_takes = 0.0
        self.accounting_fails = False
        self.outcome = Outcome("req-1", "glm-test", self.clock.now())

        async def completed(outcome: Outcome) -> None:
            if self.accounting_takes:
                await sleep(self.clock, self.accounting_takes)
            if self.accounting_fails:
                raise RuntimeError("DynamoDB did not answer in time")
            self.completed.append(outcome)

        def on_complete(outcome: Outcome) -> dict[str, Any]:
            return {"accounting": completed(outcome)}

        self.body = RelayBody(
            self.answer,
            self.outcome,
            Clocks(KEEPALIVE, IDLE, self.clock.now() + deadline_in),
            Recorded(),
            on_complete=on_complete,
            on_lost=lambda outcome, parts: self.lost.append(parts),
            clock=self.clock,
        )
        self.frames: list[bytes] = []
        self.ended = False
        self._reader: asyncio.Task[None] | None = None

    def start(self) -> None:
        async def read_all() -> None:
            async for frame in self.body:
                self.frames.append(frame)
            self.ended = True

        self._reader = asyncio.ensure_future(read_all())

    async def stop(self) -> None:
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        await self.body.aclose()


@pytest.fixture
async def harness():
    made: list[Harness] = []

    def make(**kwargs: Any) -> Harness:
        made.append(Harness(**kwargs))
        made[-1].start()
        return made[-1]

    yield make
    for h in made:
        await h.stop()


async def test_pieces_are_framed_in_order_and_the_answer_ends_with_one_done(harness) -> None:
    h = harness()
    await settle()
    h.answer.send(ReasoningPiece("think"), TextPiece("Hel"))
    h.answer.send(TextPiece("lo"), Finish("stop", {"total_tokens": 3}, None, "up-1"))
    h.answer.send(TextPiece("after the end"))
    h.answer.end()
    await settle()
    await settle()  # the bookkeeping's own steps

    assert h.frames == [
        b"open",
        b"ReasoningPiece:think",
        b"TextPiece:Hel",
        b"TextPiece:lo",
        b"done:stop",
    ]
    assert h.ended
    assert [o.status for o in h.completed] == ["complete"]
    assert h.outcome.answer == ["Hel", "lo"] and h.outcome.usage == {"total_tokens": 3}


async def test_a_silent_upstream_gets_keepalives_at_the_interval(harness) -> None:
    h = harness()
    await settle()

    await h.clock.advance(KEEPALIVE - 0.01)
    assert h.frames == [b"open"]
    await h.clock.advance(0.01)
    assert h.frames == [b"open", b"keepalive"]
    await h.clock.advance(KEEPALIVE)
    assert h.frames == [b"open", b"keepalive", b"keepalive"]
    assert not h.ended and h.completed == []


async def test_an_upstream_silent_for_the_idle_timeout_ends_as_upstream_stalled(harness) -> None:
    h = harness()
    await settle()

    await h.clock.advance(IDLE)

    assert h.frames == [b"open", *[b"keepalive"] * 3, b"error:upstream_stalled"]
    assert h.ended and h.answer.closed
    assert [(o.status, o.error_code) for o in h.completed] == [("error", "upstream_stalled")]


async def test_data_resets_the_idle_clock_but_not_past_it(harness) -> None:
    h = harness()
    await settle()
    await h.clock.advance(50)
    h.answer.send(TextPiece("x"))
    await settle()

    await h.clock.advance(IDLE - 1)  # 59 s after the data
    assert not h.ended
    await h.clock.advance(1)
    assert h.frames[-1] == b"error:upstream_stalled" and h.ended


async def test_the_deadline_ends_the_answer_before_any_other_clock(harness) -> None:
    h = harness(deadline_in=10.0)
    await settle()
    h.answer.send(TextPiece("partial"))
    await settle()

    await h.clock.advance(10)

    assert h.frames == [b"open", b"TextPiece:partial", b"error:deadline_exceeded"]
    assert [o.status for o in h.completed] == ["error"]


async def test_a_failed_finish_is_an_error_the_format_writes(harness) -> None:
    # The format sees the finish (and its failure): /chat writes an error event, /v1 writes
    # finish_reason content_filter. Either way the outcome is an error.
    h = harness()
    await settle()
    failure = RelayError(ErrorCode.CONTENT_FILTERED, "filtered")
    h.answer.send(TextPiece("a"), Finish("sensitive", None, None, None, failure))
    await settle()

    assert h.frames == [b"open", b"TextPiece:a", b"done:sensitive"]
    assert h.outcome.finish_reason == "sensitive"
    assert (h.outcome.status, h.outcome.error_code) == ("error", "content_filtered")


async def test_an_upstream_that_ends_early_is_upstream_disconnected(harness) -> None:
    h = harness()
    await settle()
    h.answer.send(TextPiece("a"))
    h.answer.end()
    await settle()
    await settle()  # the bookkeeping's own steps

    assert h.frames[-1] == b"error:upstream_disconnected" and h.ended


async def test_closing_before_iteration_releases_the_upstream_once() -> None:
    h = Harness()
    await h.body.aclose()
    await h.body.aclose()

    assert h.answer.closed
    assert [o.status for o in h.completed] == ["stopped"]


async def test_a_client_that_leaves_mid_answer_stops_it(harness) -> None:
    h = harness()
    await settle()
    h.answer.send(TextPiece("a"))
    await settle()

    await h.body.aclose()

    assert h.answer.closed
    assert [o.status for o in h.completed] == ["stopped"]


class RecordingTap:
    """A ``FrameTap`` that keeps what it saw; ``end`` waits for ``release`` when told to."""

    def __init__(self, hold: bool = False) -> None:
        self.frames: list[bytes] = []
        self.terminal: bytes | None = None
        self.release = asyncio.Event()
        if not hold:
            self.release.set()

    def frame(self, frame: bytes) -> None:
        self.frames.append(frame)

    async def end(self, terminal: bytes) -> None:
        await self.release.wait()
        self.terminal = terminal


def tapped(tap: RecordingTap) -> Harness:
    h = Harness()
    h.body.record(tap)
    h.start()
    return h


async def test_a_tap_sees_every_frame_but_keepalives_and_the_body_ends_once_it_is_recorded() -> (
    None
):
    tap = RecordingTap(hold=True)
    h = tapped(tap)
    await settle()
    h.answer.send(TextPiece("Hel"))
    await settle()
    await h.clock.advance(KEEPALIVE)
    h.answer.send(TextPiece("lo"), Finish("stop", {"total_tokens": 2}, None, "up-1"))
    h.answer.end()
    await settle()

    assert h.frames == [b"open", b"TextPiece:Hel", b"keepalive", b"TextPiece:lo", b"done:stop"]
    assert tap.frames == [b"open", b"TextPiece:Hel", b"TextPiece:lo"]
    # The client has the terminal frame, but the body (and the invocation) ends only once the
    # record has it too.
    assert not h.ended and tap.terminal is None and h.answer.closed
    tap.release.set()
    for _ in range(4):
        await settle()
    assert tap.terminal == b"done:stop"
    assert h.ended and [o.status for o in h.completed] == ["complete"]
    await h.stop()


async def test_a_failed_answer_records_its_error_event() -> None:
    tap = RecordingTap()
    h = tapped(tap)
    await settle()
    await h.clock.advance(IDLE)
    assert h.frames[-1] == b"error:upstream_stalled"
    assert tap.terminal == b"error:upstream_stalled"
    await h.stop()


async def test_an_answer_stopped_midway_records_answer_stopped() -> None:
    tap = RecordingTap()
    h = tapped(tap)
    await settle()
    h.answer.send(TextPiece("Hel"))
    await settle()
    await h.stop()

    assert tap.frames == [b"open", b"TextPiece:Hel"]
    assert tap.terminal == b"error:answer_stopped"
    assert [o.status for o in h.completed] == ["stopped"]


# --- the bookkeeping after the terminal frame ------------------------------------------------


async def finish_answer(h: Harness) -> None:
    await settle()
    h.answer.send(TextPiece("Hi"), Finish("stop", {"total_tokens": 2}, None, "up-1"))
    h.answer.end()
    await settle()
    await settle()
    assert h.frames[-1] == b"done:stop"


async def test_slow_bookkeeping_holds_the_body_for_the_wait_only_and_runs_on() -> None:
    tap = RecordingTap(hold=True)
    h = tapped(tap)
    h.accounting_takes = 14.0  # a DynamoDB that takes its time
    await finish_answer(h)

    await h.clock.advance(0.99)
    assert not h.ended
    await h.clock.advance(0.02)
    assert h.ended  # the terminal frame was sent a second ago: the body ends now
    assert h.outcome.deferred == ["accounting", "stream_record"]
    assert h.completed == [] and tap.terminal is None

    # What was left finishes on its own, later (the next invocations give it time).
    tap.release.set()
    await h.clock.advance(14)
    assert tap.terminal == b"done:stop" and [o.status for o in h.completed] == ["complete"]
    assert h.lost == []
    await h.stop()


async def test_bookkeeping_that_never_finishes_is_stopped_and_reported_once() -> None:
    tap = RecordingTap(hold=True)
    h = tapped(tap)
    await finish_answer(h)
    await h.clock.advance(1.01)
    assert h.ended and h.outcome.deferred == ["stream_record"]

    # Given until the answer's deadline (600 s away here), and at least LEFTOVER_SECONDS.
    await h.clock.advance(598)
    assert h.lost == []
    await h.clock.advance(3 + LEFTOVER_SECONDS)
    assert h.lost == [["stream_record"]]
    await h.clock.advance(LEFTOVER_SECONDS)
    assert h.lost == [["stream_record"]]
    await h.stop()


async def test_bookkeeping_that_fails_is_reported_without_holding_the_body() -> None:
    h = harness_started()
    h.accounting_fails = True
    await finish_answer(h)
    await settle()

    assert h.ended and h.outcome.deferred == []
    assert h.lost == [["accounting"]]
    await h.stop()


def harness_started() -> Harness:
    h = Harness()
    h.start()
    return h
