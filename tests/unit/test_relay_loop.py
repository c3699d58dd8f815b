"""The relay loop's state machine, driven by a fake clock: no sleeping, no sockets.

Each test holds the upstream silent or feeds it pieces by hand, moves the clock, and asserts the
frames the body yields, the one terminal frame, and what the completion callback saw.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

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
    def __init__(self, deadline_in: float = 600.0) -> None:
        self.clock = FakeClock()
        self.answer = FakeAnswer()
        self.completed: list[Outcome] = []
        self.outcome = Outcome("req-1", "glm-test", self.clock.now())

        async def on_complete(outcome: Outcome) -> None:
            self.completed.append(outcome)

        self.body = RelayBody(
            self.answer,
            self.outcome,
            Clocks(KEEPALIVE, IDLE, self.clock.now() + deadline_in),
            Recorded(),
            on_complete=on_complete,
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
