"""What an answer leaves to do after its terminal frame: the record's end, the quota, the turn.

The caller has the terminal frame already, but the body, and with it the invocation (and what
Lambda bills), ends only when this work does; an SDK that reads to the end of the body waits too.
So the body waits for it only briefly (``BOOKKEEPING_WAIT_SECONDS``). What is not done by then
carries on in the background: the container's event loop outlives the invocation, and Lambda
runs it again with the next invocation (it freezes a container in between). It gets up to
``LEFTOVER_SECONDS`` more; whatever then is still running is stopped. Work that failed or was
stopped is reported once, by name (``on_lost``), so the log says what was never settled.

Example:
    deferred = await settle({"quota": ledger.settle(...)}, wait=1.0, limit=30.0, on_lost=log)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping

from glm_relay.chat.clock import LOOP_CLOCK, Clock

LEFTOVER_SECONDS = 120.0
"""How long work handed to the background may still take (after the body's own wait)."""

Jobs = Mapping[str, Awaitable[None]]
"""Named pieces of work: ``{"quota": ..., "conversation_turn": ..., "stream_record": ...}``."""
OnLost = Callable[[list[str]], None]

_LEFTOVERS: set[asyncio.Task[None]] = set()  # kept referenced until done


async def settle(
    jobs: Jobs,
    *,
    wait: float,
    limit: float,
    on_lost: OnLost | None = None,
    clock: Clock = LOOP_CLOCK,
) -> list[str]:
    """Run ``jobs`` together and wait for them up to ``wait`` seconds; hand what is left to the
    background for up to ``limit`` seconds in all. Returns the names handed on (sorted)."""
    tasks: dict[asyncio.Future[None], str] = {
        asyncio.ensure_future(job): name for name, job in jobs.items()
    }
    await _until_done(tasks, min(wait, limit), clock)
    running = sorted(name for task, name in tasks.items() if not task.done())
    if not running:
        _report(tasks, on_lost)
        return []
    leftover = asyncio.ensure_future(_finish_later(tasks, max(limit - wait, 0.0), on_lost, clock))
    _LEFTOVERS.add(leftover)
    leftover.add_done_callback(_LEFTOVERS.discard)
    return running


async def _finish_later(
    tasks: dict[asyncio.Future[None], str], limit: float, on_lost: OnLost | None, clock: Clock
) -> None:
    await _until_done(tasks, limit, clock)
    for task in tasks:
        task.cancel()  # a no-op for those already done
    await asyncio.gather(*tasks, return_exceptions=True)
    _report(tasks, on_lost)


async def _until_done(tasks: Iterable[asyncio.Future[None]], seconds: float, clock: Clock) -> None:
    """Wait until every task is done or ``seconds`` pass on ``clock``, whichever comes first."""
    running = [task for task in tasks if not task.done()]
    if not running:
        return
    waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    left = len(running)

    def one_done(_: object) -> None:
        nonlocal left
        left -= 1
        if left == 0 and not waiter.done():
            waiter.set_result(None)

    def time_up() -> None:
        if not waiter.done():
            waiter.set_result(None)

    for task in running:
        task.add_done_callback(one_done)
    timer = clock.call_later(seconds, time_up)
    try:
        await waiter
    finally:
        timer.cancel()
        for task in running:
            task.remove_done_callback(one_done)


def _report(tasks: dict[asyncio.Future[None], str], on_lost: OnLost | None) -> None:
    lost = sorted(name for task, name in tasks.items() if task.cancelled() or task.exception())
    if lost and on_lost is not None:
        on_lost(lost)
