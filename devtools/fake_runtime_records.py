"""What the fake Lambda Runtime API records: the requests it received, and per queued event the
chunks, trailers and error reports the runtime sent back.

`record_chunk`, `finish` and `fail` are how the server (`fake_runtime_api`) feeds an invocation;
tests only read these records. The error header names are spelled out here, not imported from
``glm_relay.runtime.api``: the stand-in is the oracle the runtime is tested against.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field
from typing import Any

ERROR_TYPE_HEADER = "lambda-runtime-function-error-type"
ERROR_BODY_HEADER = "lambda-runtime-function-error-body"


@dataclass(frozen=True, slots=True)
class Chunk:
    """One HTTP chunk of a streamed response, as it arrived."""

    data: bytes
    arrived_ns: int  # time.perf_counter_ns() once the whole chunk was read


@dataclass(frozen=True, slots=True)
class ErrorReport:
    """A POST to ``/error`` or ``/init/error``."""

    error_type: str | None  # the Lambda-Runtime-Function-Error-Type header
    body: bytes

    def json(self) -> Any:
        """The decoded JSON error body."""
        return json.loads(self.body)


@dataclass(slots=True)
class RequestRecord:
    """One request the stand-in received; ``status`` is set once it was answered."""

    method: str
    path: str
    connection: int
    headers: dict[str, str]
    status: int | None = None


@dataclass(eq=False)
class Invocation:
    """One queued event and everything the runtime sent back for it."""

    request_id: str
    event: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str | None
    delivered: asyncio.Future[None] = field(init=False)  # handed out on /next
    done: asyncio.Future[None] = field(init=False)  # /response ended or /error posted
    chunks: list[Chunk] = field(default_factory=list)
    response_headers: dict[str, str] = field(default_factory=dict)  # of POST /response
    trailers: dict[str, str] = field(default_factory=dict)
    error: ErrorReport | None = None
    connection: int | None = None  # the connection /response came on
    _arrivals: asyncio.Queue[Chunk | None] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        loop = asyncio.get_running_loop()
        self.delivered = loop.create_future()
        self.done = loop.create_future()
        self._arrivals = asyncio.Queue()

    @property
    def body(self) -> bytes:
        """The streamed response body as received (prelude, delimiter, frames)."""
        return b"".join(chunk.data for chunk in self.chunks)

    async def next_chunk(self) -> Chunk | None:
        """The next response chunk the moment it arrives; None once the body has ended."""
        return await self._arrivals.get()

    def error_trailer(self) -> Any:
        """The decoded ``Lambda-Runtime-Function-Error-Body`` trailer, or None if absent."""
        encoded = self.trailers.get(ERROR_BODY_HEADER)
        return None if encoded is None else json.loads(base64.b64decode(encoded))


def record_chunk(invocation: Invocation, data: bytes) -> None:
    """Keep one response chunk with its arrival time and hand it to ``next_chunk``."""
    chunk = Chunk(data, time.perf_counter_ns())
    invocation.chunks.append(chunk)
    invocation._arrivals.put_nowait(chunk)


def finish(invocation: Invocation) -> None:
    """The response or error was posted in full: end ``next_chunk`` and resolve ``done``."""
    invocation._arrivals.put_nowait(None)
    if not invocation.done.done():
        invocation.done.set_result(None)


def fail(invocation: Invocation, exc: BaseException) -> None:
    """The response stream broke off: end ``next_chunk`` and fail ``done`` with the cause."""
    invocation._arrivals.put_nowait(None)
    if not invocation.done.done():
        invocation.done.set_exception(ConnectionError(f"response stream broken: {exc!r}"))
