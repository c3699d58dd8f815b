"""Test doubles shared by the store tests."""

from __future__ import annotations

from datetime import datetime


class FakeClock:
    """A settable ``time.time`` stand-in."""

    def __init__(self, when: datetime) -> None:
        self.now = when.timestamp()

    def __call__(self) -> float:
        return self.now

    def set(self, when: datetime) -> None:
        self.now = when.timestamp()

    def advance(self, seconds: float) -> None:
        self.now += seconds
