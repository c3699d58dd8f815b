"""Handlers for the runtime tests, chosen with ``_HANDLER=tests.runtime.handlers.<name>``.

They run inside the runtime process, so everything a test needs to observe travels back in the
response itself or over the gate connection named in the event.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from glm_relay.runtime import InvocationContext, StreamingResponse, fixed_response

_served = 0
_first_loop: asyncio.AbstractEventLoop | None = None


async def echo(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Answers with exactly the status, headers, cookies and frames the event asks for."""
    frames = [frame.encode() for frame in event.get("frames", [])]
    return StreamingResponse(
        event.get("status", 200),
        event.get("headers", {}),
        _iterate(frames),
        event.get("cookies", []),
    )


async def identity(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Reports the process, event loop and invocation count serving it, and what it was told."""
    global _served, _first_loop
    _served += 1
    loop = asyncio.get_running_loop()
    if _first_loop is None:
        _first_loop = loop
    payload = {
        "pid": os.getpid(),
        "served": _served,
        "same_loop": loop is _first_loop,
        "event": event,
        "request_id": context.aws_request_id,
        "deadline_ms": context.deadline_ms,
        "function_arn": context.invoked_function_arn,
        "trace_id": context.trace_id,
        "trace_env": os.environ.get("_X_AMZN_TRACE_ID"),
    }
    return fixed_response(200, {"content-type": "application/json"}, json.dumps(payload).encode())


async def gated(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Yields each frame only after the test's gate sends a line; tells the gate when closed.

    So a frame cannot be produced before the test has seen the previous one arrive.
    """
    host, _, port = event["gate"].rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))

    async def body() -> AsyncIterator[bytes]:
        try:
            for frame in event["frames"]:
                await reader.readline()
                yield frame.encode()
        finally:
            writer.write(b"closed\n")
            await writer.drain()
            writer.close()

    return StreamingResponse(200, {"content-type": "text/event-stream"}, body())


async def fails_in_handle(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Raises before any response exists."""
    raise ValueError("no route for this event")


async def fails_mid_stream(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Sends one frame, then its body raises."""

    async def body() -> AsyncIterator[bytes]:
        yield b"data: first\n\n"
        raise RuntimeError("upstream went away")

    return StreamingResponse(200, {"content-type": "text/event-stream"}, body())


async def returns_dict(event: dict[str, Any], context: InvocationContext) -> Any:
    """Returns a buffered-style response instead of a StreamingResponse."""
    return {"statusCode": 200, "body": "hello"}


async def list_body(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Returns a StreamingResponse whose body is a list, not an async iterator."""
    return StreamingResponse(200, {}, [b"data: x\n\n"])  # type: ignore[arg-type]


async def yields_text(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Yields a str frame where bytes are required."""

    async def body() -> AsyncIterator[Any]:
        yield b"data: ok\n\n"
        yield "data: not bytes\n\n"

    return StreamingResponse(200, {}, body())


async def _iterate(frames: list[bytes]) -> AsyncIterator[bytes]:
    for frame in frames:
        yield frame


not_callable = "a module attribute that is not a function"
