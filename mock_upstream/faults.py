"""The catalogue of faults a request can ask for, and the "fail N times, then succeed" counter.

Faults come in three families:

* refusals: an HTTP error before any byte of the answer (`HTTP_FAULTS`);
* mid-stream failures: the answer starts, then something goes wrong (`MIDSTREAM_FAULTS`);
* shapes: a successful answer with a particular form (`SHAPE_FAULTS`), plus `slow_headers`.

One request may combine shapes and `slow_headers` with at most one refusal or mid-stream failure.
`#times=N` limits the failing faults (everything but the shapes) to the first N requests carrying
the same messages.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from mock_upstream import errors


@dataclass(frozen=True)
class HttpFault:
    status: int
    code: str
    message: str
    retry_after: bool = False  # whether a configured Retry-After header is sent


HTTP_FAULTS: dict[str, HttpFault] = {
    "auth": HttpFault(401, errors.INVALID_TOKEN, "The token is invalid."),
    "expired": HttpFault(401, errors.EXPIRED_TOKEN, "The token has expired; sign a new one."),
    "rate_limit": HttpFault(
        429,
        errors.TOO_MUCH_CONCURRENCY,
        "Too many concurrent requests for this API; lower the concurrency.",
        retry_after=True,
    ),
    "balance": HttpFault(
        429, errors.BALANCE_EXHAUSTED, "The account balance is exhausted; top it up and retry."
    ),
    "too_long": HttpFault(400, errors.PROMPT_TOO_LONG, "The prompt is too long for this model."),
    "sensitive_input": HttpFault(
        400, errors.SENSITIVE_INPUT, "The input was flagged as unsafe or sensitive content."
    ),
    "server_error": HttpFault(500, errors.INTERNAL_ERROR, "Internal Error"),
    "unavailable": HttpFault(
        503, errors.UNAVAILABLE, "The service is temporarily unavailable.", retry_after=True
    ),
}

# Mid-stream failures that end the answer early with their own finish reason.
ENDING_FAULTS = frozenset({"sensitive", "network_error", "length", "model_context_window_exceeded"})
MIDSTREAM_FAULTS = frozenset({"stall", "drop", "malformed", "error_frame", *ENDING_FAULTS})
SHAPE_FAULTS = frozenset({"reasoning", "tool_call", "unicode", "crlf", "numeric_code"})
ALL_FAULTS = frozenset({*HTTP_FAULTS, *MIDSTREAM_FAULTS, *SHAPE_FAULTS, "slow_headers"})

# What an `error_frame` fault sends mid-stream.
ERROR_FRAME_CODE = errors.NETWORK_ERROR
ERROR_FRAME_MESSAGE = "Network error while generating the answer; please retry later."


def parse_fault_list(raw: str) -> tuple[str, ...]:
    """`"reasoning,drop"` -> `("reasoning", "drop")`, refusing unknown or clashing names."""
    names = tuple(dict.fromkeys(name.strip() for name in raw.split(",") if name.strip()))
    if not names:
        raise ValueError("#fault needs a name")
    unknown = [name for name in names if name not in ALL_FAULTS]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r}; known: {', '.join(sorted(ALL_FAULTS))}")
    failing = [name for name in names if name in HTTP_FAULTS or name in MIDSTREAM_FAULTS]
    if len(failing) > 1:
        raise ValueError(f"faults {failing[0]!r} and {failing[1]!r} cannot be combined")
    return names


@dataclass(frozen=True)
class FaultSet:
    """The faults that apply to one request, after `#times` was taken into account."""

    http: HttpFault | None = None
    midstream: str | None = None
    shapes: frozenset[str] = frozenset()
    slow_headers: bool = False

    def names(self) -> list[str]:
        out = sorted(self.shapes)
        if self.slow_headers:
            out.append("slow_headers")
        if self.midstream:
            out.append(self.midstream)
        out.extend(name for name, fault in HTTP_FAULTS.items() if fault is self.http)
        return out


def resolve(names: tuple[str, ...], failing_active: bool) -> FaultSet:
    """Sort the requested names into families; drop the failing ones when `#times` is used up."""
    shapes = frozenset(name for name in names if name in SHAPE_FAULTS)
    if not failing_active:
        return FaultSet(shapes=shapes)
    http = next((HTTP_FAULTS[name] for name in names if name in HTTP_FAULTS), None)
    midstream = next((name for name in names if name in MIDSTREAM_FAULTS), None)
    return FaultSet(
        http=http, midstream=midstream, shapes=shapes, slow_headers="slow_headers" in names
    )


class FailCounter:
    """Counts requests per conversation so `#times=N` fails the first N and lets later ones through.

    Requests are "the same" when their `messages` are equal, which is what a client's retry sends.
    """

    def __init__(self) -> None:
        self._seen: dict[str, int] = {}

    def should_fail(self, messages: Any, times: int | None) -> bool:
        if times is None:
            return True
        key = json.dumps(messages, sort_keys=True, ensure_ascii=False)
        seen = self._seen.get(key, 0)
        self._seen[key] = seen + 1
        return seen < times

    def clear(self) -> None:
        self._seen.clear()
