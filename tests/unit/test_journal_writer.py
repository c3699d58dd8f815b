"""The journal writer's batching, driven by a fake clock and a fake table: no sleeping, no moto.

Each test feeds frames, moves the clock, holds or fails writes, and asserts the items written:
their order, their frame numbers, the ``end`` mark, and how many writes a minute of answer costs.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from glm_relay.state.journal import Batching, JournalWriter
from tests.support.fake_clock import FakeClock, settle

INTERVAL = 0.25


class FakeTable:
    """Keeps each ``put_item``; ``hold`` makes writes wait for ``release``, ``failures`` fails
    that many writes first."""

    def __init__(self, *, hold: bool = False, failures: int = 0) -> None:
        self.items: list[dict[str, Any]] = []
        self.calls = 0
        self.hold = hold
        self.failures = failures
        self.gates: list[asyncio.Future[None]] = []

    async def call(self, operation: str, **params: Any) -> dict[str, Any]:
        assert operation == "put_item"
        self.calls += 1
        if self.hold:
            gate = asyncio.get_running_loop().create_future()
            self.gates.append(gate)
            await gate
        if self.failures:
            self.failures -= 1
            raise RuntimeError("throttled")
        self.items.append(params["Item"])
        return {}

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


async def test_a_failed_write_is_tried_again_in_order_then_given_up_after_three() -> None:
    clock, table = FakeClock(), FakeTable(failures=1)
    w = writer(table, clock)
    w.frame(f(1))
    await settle()
    w.frame(f(2))
    await clock.advance(INTERVAL)
    assert table.batches() == [(1, [s(1), s(2)], False)]  # the retry carries both, in order

    table.failures = 3
    w.frame(f(3))
    await clock.advance(INTERVAL * 3 + 0.01)
    assert w.broken and table.calls == 5
    await w.end(f(4))
    assert table.calls == 5 and len(table.items) == 1


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
