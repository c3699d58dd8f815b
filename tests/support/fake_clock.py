"""A clock for state machines that take one (``glm_relay.chat.clock.Clock``): time moves only
when a test says so, and timers fire as it passes them, so nothing sleeps."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Callable
from itertools import count
from typing import Any


class FakeClock:
    """Time that moves only when a test says so; timers fire as it passes them."""

    def __init__(self) -> None:
        self.time = 1000.0
        self._timers: list[tuple[float, int, Callable[[], None], list[bool]]] = []
        self._order = count()

    def now(self) -> float:
        return self.time

    def call_later(self, delay: float, callback: Callable[[], None]) -> Any:
        cancelled = [False]
        heapq.heappush(self._timers, (self.time + delay, next(self._order), callback, cancelled))

        class Handle:
            def cancel(self) -> None:
                cancelled[0] = True

        return Handle()

    async def advance(self, seconds: float) -> None:
        """Move time forward, firing due timers in order and letting the loop react to each."""
        target = self.time + seconds
        while self._timers and self._timers[0][0] <= target:
            when, _, callback, cancelled = heapq.heappop(self._timers)
            self.time = when
            if not cancelled[0]:
                callback()
                await settle()
        self.time = target
        await settle()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)
