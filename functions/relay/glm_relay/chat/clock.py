"""The relay loop's sense of time, injectable so its clocks can be tested without sleeping."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic seconds, and a way to be called back after a delay on the same clock."""

    def now(self) -> float: ...

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable: ...


class LoopClock:
    """``time.monotonic`` and the running event loop's timers (what production uses)."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def call_later(self, delay: float, callback: Callable[[], None]) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, callback)


LOOP_CLOCK = LoopClock()


async def sleep(clock: Clock, seconds: float) -> None:
    """``asyncio.sleep`` on ``clock``: a fake clock's tests move time instead of waiting."""
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def wake() -> None:
        if not waiter.done():
            waiter.set_result(None)

    timer = clock.call_later(max(seconds, 0.0), wake)
    try:
        await waiter
    finally:
        timer.cancel()
