"""The invocation context handed to the handler, the same under Lambda and locally."""

from __future__ import annotations

import time
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class InvocationContext:
    """What the runtime knows about one invocation.

    Example:
        ctx = InvocationContext(aws_request_id="r-1", deadline_ms=now_ms() + 30_000)
    """

    aws_request_id: str
    deadline_ms: int
    invoked_function_arn: str = ""
    trace_id: str | None = None

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before Lambda stops the function (never negative)."""
        return max(0, self.deadline_ms - now_ms())


def now_ms() -> int:
    """Wall-clock epoch milliseconds, the unit Lambda uses for deadlines."""
    return time.time_ns() // 1_000_000
