"""Turns an answer and its faults into a script of steps: wait, start, send bytes, drop.

Scripts are lazy generators, so a `#stamp` chunk reads the clock only when its turn to be sent
has come, and a 5,000-chunk stream is never held in memory. `responder.Responder` plays them.

Timing rule: every data frame but `[DONE]` is preceded by a wait, the first-token latency for the
first frame and the inter-chunk delay for the others.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mock_upstream import errors, faults, wire
from mock_upstream.pieces import Answer, Piece, merge_tool_calls


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Start:
    status: int
    headers: dict[str, str]


@dataclass(frozen=True)
class Send:
    data: bytes
    piece: bool = False  # one piece of the answer (counted in the request log)


@dataclass(frozen=True)
class Drop:
    """End the response without finishing the body: the server closes the connection."""


Step = Sleep | Start | Send | Drop


@dataclass(frozen=True)
class Timing:
    first_s: float
    delay_s: float
    slow_headers_s: float
    stall_s: float


@dataclass(frozen=True)
class Identity:
    """What every chunk of one answer repeats."""

    chunk_id: str
    created: int
    model: str
    request_id: str | None = None


def _stamp() -> str:
    return f"{time.time_ns()} "


def _piece_text(piece: Piece) -> str:
    return _stamp() if piece.text is None else piece.text


_ENDINGS = faults.ENDING_FAULTS


def _cut(answer: Answer, fault_set: faults.FaultSet, after: int | None) -> tuple[int, str]:
    """How many pieces go out before a mid-stream failure, and the last chunk's finish reason."""
    total = len(answer.pieces)
    if fault_set.midstream is None:
        return total, answer.finish_reason
    stop = min(total // 2 if after is None else after, total)
    if fault_set.midstream in _ENDINGS:
        return stop, fault_set.midstream
    return stop, answer.finish_reason


def _usage(answer: Answer, pieces: tuple[Piece, ...]) -> dict[str, Any]:
    return wire.usage(
        answer.prompt_tokens,
        sum(p.tokens for p in pieces),
        sum(p.tokens for p in pieces if p.kind == "reasoning"),
    )


def error_steps(
    error: errors.ZhipuError, wait_s: float = 0.0, numeric: bool = False
) -> Iterator[Step]:
    """An HTTP error answer in Zhipu's shape, optionally after a wait (`slow_headers`) and with
    a numeric code (`numeric_code`)."""
    if wait_s:
        yield Sleep(wait_s)
    body = error.body(numeric)
    headers = {**wire.JSON_HEADERS, **error.headers, "content-length": str(len(body))}
    yield Start(error.status, headers)
    yield Send(body)


class _Pacer:
    """Hands out the wait before each data frame (first-token latency, then the chunk delay)."""

    def __init__(self, timing: Timing) -> None:
        self._timing = timing
        self._frames = 0

    def wait(self) -> Iterator[Step]:
        seconds = self._timing.first_s if self._frames == 0 else self._timing.delay_s
        self._frames += 1
        if seconds:
            yield Sleep(seconds)


def _piece_frame(enc: wire.ChunkEncoder, piece: Piece, extra: dict[str, Any] | None) -> bytes:
    if piece.kind == "tool_call":
        return enc.tool_calls(list(piece.tool_calls), extra)
    if piece.kind == "reasoning":
        return enc.reasoning(_piece_text(piece), extra)
    return enc.content(_piece_text(piece), extra)


def stream_steps(
    answer: Answer,
    fault_set: faults.FaultSet,
    timing: Timing,
    identity: Identity,
    after: int | None,
) -> Iterator[Step]:
    """The `stream=true` answer, with at most one mid-stream failure before piece `after`."""
    enc = wire.ChunkEncoder(
        identity.chunk_id, identity.created, identity.model, crlf="crlf" in fault_set.shapes
    )
    if fault_set.slow_headers:
        yield Sleep(timing.slow_headers_s)
    yield Start(200, dict(wire.SSE_HEADERS))

    pacer = _Pacer(timing)
    pieces = answer.pieces
    stop, finish_reason = _cut(answer, fault_set, after)
    mid = fault_set.midstream
    numeric = "numeric_code" in fault_set.shapes
    search = None if answer.web_search is None else {"web_search": list(answer.web_search)}
    held: Piece | None = None  # a tool-call fragment that rides on the last chunk
    sent: list[Piece] = []
    for index in range(len(pieces) + 1):
        if mid is not None and index == stop:
            if mid == "drop":
                yield Drop()
                return
            if mid == "error_frame":
                yield from pacer.wait()
                yield Send(enc.error(faults.ERROR_FRAME_CODE, faults.ERROR_FRAME_MESSAGE, numeric))
                return
            if mid == "stall":
                yield Sleep(timing.stall_s)
            elif mid == "malformed":
                yield from pacer.wait()
                yield Send(enc.malformed())
            elif mid in _ENDINGS:
                break
        if index == len(pieces):
            break
        if pieces[index].on_finish:
            held = pieces[index]
            sent.append(held)
            continue
        yield from pacer.wait()
        extra = search if search is not None and index >= answer.search_at else None
        yield Send(_piece_frame(enc, pieces[index], extra), piece=True)
        if extra is not None:
            search = None
        sent.append(pieces[index])
    yield from pacer.wait()
    calls = None if held is None else list(held.tool_calls)
    yield Send(
        enc.final(finish_reason, _usage(answer, tuple(sent)), search, calls), piece=bool(calls)
    )
    yield Send(enc.done())


def completion_steps(
    answer: Answer,
    fault_set: faults.FaultSet,
    timing: Timing,
    identity: Identity,
    after: int | None,
) -> Iterator[Step]:
    """The `stream=false` answer. It arrives once the whole answer would have been generated, so
    the wait is what the stream would take: the first-token latency plus one chunk delay per piece.

    Stream-only faults map to their nearest equivalent: `stall` waits like `slow_headers`,
    `drop` closes the connection halfway through the body, `malformed` sends half a JSON body,
    `error_frame` sends an error object with status 200.
    """
    mid = fault_set.midstream
    stop, finish_reason = _cut(answer, fault_set, after)
    sent = answer.pieces if mid not in _ENDINGS else answer.pieces[:stop]
    wait = 0.0
    if fault_set.slow_headers:
        wait += timing.slow_headers_s
    if mid == "stall":
        wait += timing.stall_s
    wait += timing.first_s + timing.delay_s * len(sent)
    if wait:
        yield Sleep(wait)

    if mid == "error_frame":
        numeric = "numeric_code" in fault_set.shapes
        body = errors.error_body(faults.ERROR_FRAME_CODE, faults.ERROR_FRAME_MESSAGE, numeric)
    else:
        message: dict[str, Any] = {
            "content": "".join(_piece_text(p) for p in sent if p.kind == "content"),
            "role": "assistant",
        }
        reasoning = "".join(_piece_text(p) for p in sent if p.kind == "reasoning")
        if reasoning:
            message["reasoning_content"] = reasoning
        calls = merge_tool_calls(sent)
        if calls:
            message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
        body = wire.completion_body(
            identity.chunk_id,
            identity.created,
            identity.model,
            message,
            finish_reason,
            _usage(answer, tuple(sent)),
            identity.request_id,
            None if answer.web_search is None else list(answer.web_search),
        )
    if mid == "malformed":
        body = body[: len(body) // 2]
    yield Start(200, {**wire.JSON_HEADERS, "content-length": str(len(body))})
    if mid == "drop":
        yield Send(body[: len(body) // 2])
        yield Drop()
    else:
        yield Send(body)
