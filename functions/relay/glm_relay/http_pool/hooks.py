"""Telling the task that sends a request when that request is out of its hands."""

from __future__ import annotations

import contextlib
from contextvars import ContextVar
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

_out_of_hands: ContextVar[Callable[[], None] | None] = ContextVar("out_of_hands", default=None)


@contextlib.contextmanager
def when_out_of_hands(callback: Callable[[], None] | None) -> Iterator[None]:
    """Call ``callback`` (maybe more than once) whenever a request this task sends through a
    pool here is out of its hands: written to the wire, or about to wait on a new connection.

    Callers overlap other work with the request from then on, and no earlier: before that point
    the request still needs this task's CPU. (httpcore's ``trace`` extension says the same for
    httpx's own transport, at the cost of an awaited callback per step of every request.)
    """
    token = _out_of_hands.set(callback)
    try:
        yield
    finally:
        _out_of_hands.reset(token)


def hands_off() -> None:
    callback = _out_of_hands.get()
    if callback is not None:
        callback()
