"""A loopback stand-in for the Lambda Runtime API, for tests and benchmarks.

It hands queued events out on ``/next`` with the headers Lambda sends and records what the runtime
posts back: every HTTP chunk of a streamed ``/response`` with its arrival time, the trailers, and
``/error`` and ``/init/error`` reports. Plain asyncio and no threads: it runs in the caller's event
loop, and the runtime under test is a real process pointed at ``api.address``. The records are in
``fake_runtime_records``, the reading of request heads and bodies in ``fake_runtime_requests``.

The protocol literals are spelled out here again on purpose instead of being imported from
``glm_relay.runtime.api``: the stand-in is the oracle the runtime is tested against.

Example:
    async with FakeRuntimeAPI() as api:
        invocation = api.enqueue({"rawPath": "/"})
        # start `functions/relay/bootstrap` with AWS_LAMBDA_RUNTIME_API=api.address
        await invocation.done
        prelude_chunk, *frames = [chunk.data for chunk in invocation.chunks]
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any

from devtools.fake_runtime_records import (
    ERROR_TYPE_HEADER,
    ErrorReport,
    Invocation,
    RequestRecord,
    fail,
    finish,
    record_chunk,
)
from devtools.fake_runtime_requests import HEAD_END, parse_request_head, read_all, read_chunks

DEFAULT_FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:glm-relay"
DEFAULT_TIMEOUT_MS = 30_000

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
INVOCATION_PREFIX = "/2018-06-01/runtime/invocation/"
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"

ACCEPTED_BODY = b'{"status":"OK"}'


class FakeRuntimeAPI:
    """An asyncio HTTP/1.1 server speaking the runtime side of the Lambda Runtime API.

    ``keep_alive=False`` answers every request with ``Connection: close`` and closes, to exercise a
    runtime's reconnects; ``chunked_answers=True`` sends answer bodies chunked instead of with a
    Content-Length, as an HTTP/1.1 server may. ``malformed_answers`` names the requests
    (``"next"``, ``"response"``, ``"error"``, ``"init/error"``) answered with bytes that are not
    HTTP, to exercise a runtime's handling of a broken API.

    Example:
        async with FakeRuntimeAPI() as api:
            invocation = api.enqueue({"rawPath": "/"}, trace_id="Root=1-abc")
            chunk = await invocation.next_chunk()
    """

    def __init__(
        self, *, host: str = "127.0.0.1", keep_alive: bool = True, chunked_answers: bool = False
    ) -> None:
        self._host = host
        self._keep_alive = keep_alive
        self._chunked_answers = chunked_answers
        self._server: asyncio.Server | None = None
        self._pending: asyncio.Queue[Invocation] = asyncio.Queue()
        self._connections: dict[int, tuple[asyncio.Task[None], asyncio.StreamWriter]] = {}
        self.invocations: dict[str, Invocation] = {}
        self.requests: list[RequestRecord] = []
        self.connections_opened = 0
        self.init_error: asyncio.Future[ErrorReport]
        self.address = ""
        self.malformed_answers: set[str] = set()

    async def __aenter__(self) -> FakeRuntimeAPI:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Listen on a free loopback port; ``address`` becomes ``host:port``."""
        self.init_error = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(self._serve_connection, self._host, 0)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"{self._host}:{port}"

    async def close(self) -> None:
        """Stop listening and drop every connection (a runtime blocked on /next sees EOF)."""
        if self._server is not None:
            self._server.close()
        await self.drop_connections()
        if self._server is not None:
            await self._server.wait_closed()

    async def drop_connections(self) -> None:
        """Close every open connection, as a Runtime API that went away (or timed out) would."""
        connections = list(self._connections.values())
        for task, writer in connections:
            writer.close()
            task.cancel()
        for task, _ in connections:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def enqueue(
        self,
        event: Any,
        *,
        deadline_ms: int | None = None,
        request_id: str | None = None,
        function_arn: str = DEFAULT_FUNCTION_ARN,
        trace_id: str | None = None,
    ) -> Invocation:
        """Queue an event for /next; ``bytes`` are sent as they are, anything else as JSON.

        ``deadline_ms`` defaults to now + 30 s (epoch ms); ``trace_id=None`` omits the header.
        """
        raw = event if isinstance(event, bytes) else json.dumps(event).encode()
        invocation = Invocation(
            request_id=request_id or str(uuid.uuid4()),
            event=raw,
            deadline_ms=deadline_ms or time.time_ns() // 1_000_000 + DEFAULT_TIMEOUT_MS,
            function_arn=function_arn,
            trace_id=trace_id,
        )
        self.invocations[invocation.request_id] = invocation
        self._pending.put_nowait(invocation)
        return invocation

    async def _serve_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        self.connections_opened += 1
        connection = self.connections_opened
        task = asyncio.current_task()
        assert task is not None
        self._connections[connection] = (task, writer)
        try:
            while True:
                head = await reader.readuntil(HEAD_END)
                request = parse_request_head(head, connection)
                self.requests.append(request)
                await self._dispatch(request, reader, writer)
                if not self._keep_alive:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the runtime closed the connection (or died)
        except asyncio.CancelledError:
            # drop_connections() cancels this task; ending normally keeps asyncio's stream
            # machinery from reporting the cancellation as an error.
            pass
        finally:
            del self._connections[connection]
            writer.close()

    async def _dispatch(
        self, request: RequestRecord, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        path = request.path
        if request.method == "GET" and path == NEXT_PATH:
            await self._next(request, writer)
            return
        if request.method == "POST" and path == INIT_ERROR_PATH:
            report = ErrorReport(
                request.headers.get(ERROR_TYPE_HEADER), await read_all(reader, request)
            )
            if not self.init_error.done():
                self.init_error.set_result(report)
            await self._answer(writer, request, 202, ACCEPTED_BODY)
            return
        if request.method == "POST" and path.startswith(INVOCATION_PREFIX):
            request_id, _, action = path[len(INVOCATION_PREFIX) :].partition("/")
            invocation = self.invocations.get(request_id)
            if invocation is not None and action == "response":
                await self._response(invocation, request, reader, writer)
                return
            if invocation is not None and action == "error":
                body = await read_all(reader, request)
                invocation.error = ErrorReport(request.headers.get(ERROR_TYPE_HEADER), body)
                try:
                    await self._answer(writer, request, 202, ACCEPTED_BODY)
                finally:
                    finish(invocation)
                return
        await read_all(reader, request)
        await self._answer(writer, request, 404, b'{"errorType":"NotFound"}')

    async def _next(self, request: RequestRecord, writer: asyncio.StreamWriter) -> None:
        invocation = await self._pending.get()
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": invocation.request_id,
            "Lambda-Runtime-Deadline-Ms": str(invocation.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": invocation.function_arn,
        }
        if invocation.trace_id is not None:
            headers["Lambda-Runtime-Trace-Id"] = invocation.trace_id
        await self._answer(writer, request, 200, invocation.event, headers)
        invocation.delivered.set_result(None)

    async def _response(
        self,
        invocation: Invocation,
        request: RequestRecord,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        invocation.response_headers = request.headers
        invocation.connection = request.connection
        try:
            if "chunked" in request.headers.get("transfer-encoding", ""):
                await read_chunks(reader, invocation)
            else:
                record_chunk(invocation, await read_all(reader, request))
        except BaseException as exc:
            fail(invocation, exc)
            raise
        try:
            await self._answer(writer, request, 202, ACCEPTED_BODY)
        finally:
            finish(invocation)

    async def _answer(
        self,
        writer: asyncio.StreamWriter,
        request: RequestRecord,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
    ) -> None:
        if _kind(request.path) in self.malformed_answers:
            writer.write(MALFORMED_ANSWER)
            await writer.drain()
            return
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}"]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        if "Content-Type" not in (headers or {}):
            lines.append("Content-Type: application/json")
        if self._chunked_answers:
            lines.append("Transfer-Encoding: chunked")
            half = len(body) // 2
            body = b"".join(b"%x\r\n%b\r\n" % (len(p), p) for p in (body[:half], body[half:]) if p)
            body += b"0\r\n\r\n"
        else:
            lines.append(f"Content-Length: {len(body)}")
        if not self._keep_alive:
            lines.append("Connection: close")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
        await writer.drain()
        request.status = status


_REASONS = {200: "OK", 202: "Accepted", 404: "Not Found"}
# A status line no HTTP/1.1 client can read.
MALFORMED_ANSWER = b"HTTP/1.1 2O2 Accepted\r\nContent-Length: 0\r\n\r\n"


def _kind(path: str) -> str:
    """Which Runtime API request ``path`` is: next, response, error or init/error."""
    if path == NEXT_PATH:
        return "next"
    if path == INIT_ERROR_PATH:
        return "init/error"
    return path.rpartition("/")[2]
