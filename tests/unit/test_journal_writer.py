"""The journal writer's batching, driven by a fake clock and a fake table: no sleeping, no moto.

Each test feeds frames, moves the clock, holds or fails writes, and asserts the items written:
their order, their frame numbers, the ``end`` mark, and how many writes a minute of answer costs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from glm_relay.chat.clock import sleep
from glm_relay.state.dynamo_client import DynamoError
from glm_relay.state.journal import LOST_SK, Batching, JournalWriter
from tests.support.fake_clock import FakeClock, settle

INTERVAL = 0.25


class FakeTable:
    """Keeps each ``put_item`` (``items``, in the order stored; ``stored``, by sort key).

    ``hold`` makes writes wait for ``release``, ``failures`` fails that many writes first, and
    ``down_until`` (on ``clock``) makes every write before then time out ``timeout`` seconds after
    it was sent, as a stalled DynamoDB does; with ``land_late`` such a write is applied later
    anyway (``apply_late``)."""

    def __init__(
        self, clock: FakeClock | None = None, *, hold: bool = False, failures: int = 0
    ) -> None:
        self.items: list[dict[str, Any]] = []
        self.stored: dict[str, dict[str, Any]] = {}
        self.calls = 0
        self.sent_at: list[float] = []
        self.hold = hold
        self.failures = failures
        self.gates: list[asyncio.Future[None]] = []
        self.clock = clock
        self.down_until = 0.0
        self.timeout = 5.0
        self.land_late = False
        self.late: list[dict[str, Any]] = []
        self.refusal: DynamoError | None = None

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        assert operation == "put_item"
        self.calls += 1
        if self.clock is not None:
            self.sent_at.append(self.clock.now())
        if self.hold:
            gate = asyncio.get_running_loop().create_future()
            self.gates.append(gate)
            await gate
        if self.clock is not None and self.clock.now() < self.down_until:
            await sleep(self.clock, self.timeout)
            if self.land_late:
                self.late.append(params)
            raise TimeoutError("DynamoDB did not answer in time")
        if self.refusal is not None:
            raise self.refusal
        if self.failures:
            self.failures -= 1
            raise RuntimeError("throttled")
        self.apply(params)
        return {}

    def apply(self, params: dict[str, Any]) -> None:
        item = params["Item"]
        self.stored[item["sk"]["S"]] = item
        self.items.append(item)

    def apply_late(self) -> None:
        for params in self.late:
            self.apply(params)
        self.late.clear()

    def release(self) -> None:
        for gate in self.gates:
            if not gate.done():
                gate.set_result(None)

    def batches(self) -> list[tuple[int, list[str], bool]]:
        return [
            (
                int(item["first"]["N"]),
                [f["S"] for f in item["frames"]["L"]],
                bool(item.get("end", {}).get("BOOL")),
            )
            for item in self.items
        ]

    def record(self) -> tuple[list[str], bool]:
        """What a reader finds: the stored frames in order (each batch must start right after
        the one before, or overlap it), and whether the last batch is marked ``end``."""
        frames: list[str] = []
        end = False
        for sk in sorted(self.stored):
            item = self.stored[sk]
            first = int(item["first"]["N"])
            assert first <= len(frames) + 1, f"a gap before frame {first}"
            frames[first - 1 :] = [f["S"] for f in item["frames"]["L"]]
            end = bool(item.get("end", {}).get("BOOL"))
        return frames, end


def writer(table: FakeTable, clock: FakeClock, **batching: Any) -> JournalWriter:
    return JournalWriter(
        table,
        request_id="req-1",
        owner="alice",
        route="/chat",
        expires_at=2_000_000_000,
        batching=Batching(**{"interval": INTERVAL, **batching}),
        clock=clock,
    )


async def first_frame_written(**batching: Any) -> tuple[FakeClock, FakeTable, JournalWriter]:
    """A writer on a fake clock whose table times out when told to, its first frame stored."""
    clock = FakeClock()
    table = FakeTable(clock)
    w = writer(table, clock, **batching)
    w.frame(f(1))
    await settle()
    return clock, table, w


def f(number: int) -> bytes:
    return f"id: req-1:{number}\nevent: chat\ndata: {{}}\n\n".encode()


def s(number: int) -> str:
    return f(number).decode()


async def test_the_first_frame_is_written_at_once_and_later_ones_every_interval() -> None:
    clock, table = FakeClock(), FakeTable()
    w = writer(table, clock)
    w.frame(f(1))
    await settle()
    assert table.batches() == [(1, [s(1)], False)]

    for number in range(2, 6):
        w.frame(f(number))
        await clock.advance(0.05)
    assert len(table.items) == 1  # 0.2 s after the second frame: not yet
    await clock.advance(0.06)
    assert table.batches()[1] == (2, [s(2), s(3), s(4), s(5)], False)

    item = table.items[0]
    assert item["pk"] == {"S": "STREAM#req-1"} and item["sk"] == {"S": "F#00000001"}
    assert item["owner"] == {"S": "alice"} and item["route"] == {"S": "/chat"}
    assert item["expires_at"] == {"N": "2000000000"}
    assert table.items[1]["sk"] == {"S": "F#00000002"}


async def test_a_full_batch_is_written_without_waiting_for_the_interval() -> None:
    clock, table = FakeClock(), FakeTable()
    w = writer(table, clock, max_frames=4)
    for number in range(1, 6):
        w.frame(f(number))
        await settle()
    assert table.batches() == [(1, [s(1)], False), (2, [s(2), s(3), s(4), s(5)], False)]

    big = writer(table := FakeTable(), clock, max_bytes=100)
    big.frame(f(1))
    await settle()
    big.frame(b"x" * 60)
    await settle()
    assert len(table.items) == 1
    big.frame(b"y" * 60)
    await settle()
    assert table.batches()[1] == (2, ["x" * 60, "y" * 60], False)


async def test_one_write_at_a_time_so_batches_land_in_order() -> None:
    clock, table = FakeClock(), FakeTable(hold=True)
    w = writer(table, clock, max_frames=3)
    w.frame(f(1))
    await settle()
    for number in range(2, 9):
        w.frame(f(number))
        await clock.advance(INTERVAL)
    assert table.calls == 1  # the first write is still in flight
    table.release()
    await settle()
    assert table.calls == 2  # the next starts only now, with at most max_frames
    for _ in range(3):
        table.release()
        await settle()
    assert [first for first, _, _ in table.batches()] == [1, 2, 5, 8]
    assert [frame for _, frames, _ in table.batches() for frame in frames] == [
        s(n) for n in range(1, 9)
    ]


async def test_end_writes_everything_left_with_the_terminal_in_the_batch_marked_end() -> None:
    clock, table = FakeClock(), FakeTable(hold=True)
    w = writer(table, clock, max_frames=2)
    w.frame(f(1))
    await settle()
    for number in range(2, 6):
        w.frame(f(number))
    ending = asyncio.ensure_future(w.end(f(6)))
    for _ in range(5):
        await settle()
        table.release()
    await ending

    assert table.batches() == [
        (1, [s(1)], False),
        (2, [s(2), s(3)], False),
        (4, [s(4), s(5)], False),
        (6, [s(6)], True),
    ]
    w.frame(f(7))  # nothing after the end
    await clock.advance(1)
    assert len(table.items) == 4


async def test_a_failed_write_is_tried_again_as_it_was_then_the_rest_in_order() -> None:
    clock, table = FakeClock(), FakeTable(failures=1)
    w = writer(table, clock)
    w.frame(f(1))
    await settle()
    w.frame(f(2))
    await clock.advance(INTERVAL)
    # The same item again (a late landing of the failed write cannot differ), then the next.
    assert table.batches() == [(1, [s(1)], False), (2, [s(2)], False)]


async def test_failed_writes_are_tried_later_and_later_and_never_given_up() -> None:
    clock, table = FakeClock(), FakeTable(failures=7)
    table.clock = clock
    w = writer(table, clock)
    w.frame(f(1))
    await settle()
    await clock.advance(30)

    gaps = [round(b - a, 3) for a, b in zip(table.sent_at, table.sent_at[1:], strict=False)]
    assert gaps == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0, 2.0]  # capped at max_retry_delay
    assert table.batches() == [(1, [s(1)], False)]
    w.frame(f(2))
    await clock.advance(INTERVAL)
    assert table.batches()[-1] == (2, [s(2)], False)  # a success resets the delay


async def test_a_fifteen_second_stall_is_recovered_and_the_record_gets_its_end() -> None:
    """DynamoDB stops answering for 15 s while the answer runs (each write times out after 5 s):
    once it answers again, everything held is written, in order, and the terminal with it."""
    clock, table, w = await first_frame_written()
    table.down_until = clock.now() + 15
    for number in range(2, 201):  # 20 s of answer at 10 frames a second
        w.frame(f(number))
        await clock.advance(0.1)
    ending = asyncio.ensure_future(w.end(f(201)))
    await clock.advance(5)

    assert ending.done() and w.complete and not w.lost
    assert table.record() == ([s(n) for n in range(1, 202)], True)
    # While it stalled, one write at a time, each after the one before timed out.
    stalled = [t for t in table.sent_at if t < table.down_until]
    assert len(stalled) <= 4


async def test_a_write_that_lands_after_its_retry_changes_nothing_a_reader_saw() -> None:
    clock, table, w = await first_frame_written()
    table.down_until, table.land_late = clock.now() + 5, True
    w.frame(f(2))
    await clock.advance(INTERVAL + 5)  # frame 2's write times out (it will land later)
    w.frame(f(3))
    await clock.advance(1)  # the retry stores frame 2 again, then frame 3
    assert table.record() == ([s(1), s(2), s(3)], False)
    seen = dict(table.stored)

    table.apply_late()  # the first write of frame 2 arrives now

    assert table.stored == seen
    await w.end(f(4))
    assert table.record() == ([s(n) for n in range(1, 5)], True)


async def test_frames_held_through_a_long_stall_are_bounded_then_the_record_says_lost() -> None:
    clock, table, w = await first_frame_written(max_pending_bytes=2_000)
    table.down_until = clock.now() + 60
    number = 1
    while not w.lost:
        number += 1
        w.frame(f(number))
        assert w.pending_chars <= 2_000
        await clock.advance(0.1)
    assert w.pending_chars == 0
    w.frame(f(number + 1))  # dropped: the record is given up from the first unwritten frame
    assert w.pending_chars == 0
    await clock.advance(60)

    # Once DynamoDB answers, the marker is written without waiting for the terminal frame.
    marker = table.stored[LOST_SK]
    assert marker["end"] == {"BOOL": True} and marker["lost"] == {"BOOL": True}
    assert marker["frames"] == {"L": []} and marker["owner"] == {"S": "alice"}
    calls = table.calls
    await w.end(f(999))
    assert table.calls == calls and w.complete
    frames, _ = table.record()
    assert frames == [s(1)]


async def test_a_write_refused_for_good_ends_the_record_as_lost() -> None:
    clock, table = FakeClock(), FakeTable()
    w = writer(table, clock)
    w.frame(f(1))
    await settle()
    table.refusal = DynamoError("ValidationException", "Item size has exceeded", 400, {})
    w.frame(f(2))
    await clock.advance(INTERVAL)
    assert w.lost
    table.refusal = None
    await clock.advance(1)
    assert LOST_SK in table.stored


async def test_the_terminal_is_tried_while_its_caller_waits_and_no_longer() -> None:
    clock, table, w = await first_frame_written()
    table.down_until = clock.now() + 1000
    ending = asyncio.ensure_future(w.end(f(2)))
    await settle()
    await clock.advance(30)
    assert not ending.done()
    tries = table.calls
    assert tries >= 4

    ending.cancel()  # the caller's bound ran out
    await settle()
    await clock.advance(60)
    assert w.stopped and not w.complete
    assert table.calls <= tries + 1  # at most the write that was in flight


@pytest.mark.parametrize("tokens_per_second", [2, 10, 50, 200])
async def test_writes_per_minute_of_answer(tokens_per_second: int) -> None:
    """The measured cost: a minute of answer at a steady pace, one frame per token. A batch is
    written ``INTERVAL`` after its oldest frame, so a minute costs at most 60 / INTERVAL writes
    (one per frame when frames are further apart), and at least one per INTERVAL + gap."""
    clock, table = FakeClock(), FakeTable()
    w = writer(table, clock)
    gap = 1 / tokens_per_second
    w.frame(f(0))
    for number in range(1, 60 * tokens_per_second + 1):
        await clock.advance(gap)
        w.frame(f(number))
    await w.end(f(-1))
    print(f"{tokens_per_second} tokens/s: {table.calls} writes per minute of answer")
    assert 60 / (INTERVAL + gap) - 2 <= table.calls <= min(60 / INTERVAL, 60 / gap) + 2
    frames = [frame for _, batch, _ in table.batches() for frame in batch]
    assert len(frames) == 60 * tokens_per_second + 2
