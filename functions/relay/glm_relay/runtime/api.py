"""A small HTTP/1.1 client for the Lambda Runtime API, on raw asyncio streams.

Why not httpx: a streamed response reports a late error in request *trailers*, which httpx cannot
send, and the runtime loop must import nothing beyond the standard library (cold start).
The client keeps one keep-alive connection and opens a new one when the API has closed it.

Example:
    api = RuntimeAPIClient(os.environ["AWS_LAMBDA_RUNTIME_API"])
    invocation = await api.next_invocation()
    stream = await api.start_response(invocation.request_id, b"{...}" + b"\\0" * 8)
    await stream.send(b"data: hi\\n\\n")
    await stream.end()
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import NamedTuple

from glm_relay.http1 import CHUNK_FORMAT, ProtocolError, last_chunk, request_head
from glm_relay.http1.whole import Response, read_response

API_VERSION = "2018-06-01"
NEXT_PATH = f"/{API_VERSION}/runtime/invocation/next"
RESPONSE_PATH = f"/{API_VERSION}/runtime/invocation/{{request_id}}/response"
ERROR_PATH = f"/{API_VERSION}/runtime/invocation/{{request_id}}/error"
INIT_ERROR_PATH = f"/{API_VERSION}/runtime/init/error"

# Headers of a /next answer (compared lowercased: HTTP header names are case-insensitive).
REQUEST_ID_HEADER = "lambda-runtime-aws-request-id"
DEADLINE_HEADER = "lambda-runtime-deadline-ms"
FUNCTION_ARN_HEADER = "lambda-runtime-invoked-function-arn"
TRACE_ID_HEADER = "lambda-runtime-trace-id"

# Headers we send.
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_BODY_HEADER = "Lambda-Runtime-Function-Error-Body"
RESPONSE_MODE_HEADER = "Lambda-Runtime-Function-Response-Mode"
RESPONSE_MODE_STREAMING = "streaming"
# A function URL reads the body as "prelude JSON, 8 NUL bytes, raw body" only with this type.
HTTP_INTEGRATION_CONTENT_TYPE = "application/vnd.awslambda.http-integration-response"
ERROR_CONTENT_TYPE = "application/json"
USER_AGENT = "glm-relay-runtime/1"

# Status codes the Runtime API answers with.
STATUS_OK = 200  # /next
STATUS_ACCEPTED = 202  # /response, /error, /init/error
# "Non-recoverable state. Runtime should exit promptly." (Runtime API reference)
STATUS_CONTAINER_ERROR = 500


class RuntimeAPIError(Exception):
    """The Runtime API answered with an unexpected status.

    ``fatal`` is true for 500 (and any 5xx): the runtime must exit and let Lambda replace it.
    """

    def __init__(self, method: str, path: str, status: int, body: bytes) -> None:
        super().__init__(f"{method} {path} -> {status}: {body[:200]!r}")
        self.status = status
        self.fatal = status >= STATUS_CONTAINER_ERROR


class MalformedAnswer(RuntimeAPIError):
    """The Runtime API's answer could not be read: not HTTP/1.1 (``ProtocolError``), or a /next
    answer without a request id or with a deadline that is not a number. Always fatal, as AWS's
    runtime interface clients treat it: nothing more can be trusted on this channel, so the
    runtime logs it and exits non-zero, and Lambda replaces the sandbox."""

    def __init__(self, method: str, path: str, reason: str) -> None:
        Exception.__init__(self, f"{method} {path}: the answer is malformed: {reason[:200]}")
        self.status = 0
        self.fatal = True


class NextInvocation(NamedTuple):
    """What /next hands out: the routing headers and the raw event bytes."""

    request_id: str
    deadline_ms: int
    invoked_function_arn: str
    trace_id: str | None
    event: bytes


class RuntimeAPIClient:
    """Talks to ``http://{address}/2018-06-01`` over one reused connection."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        self._host = host or "127.0.0.1"
        self._port = int(port)
        self._host_header = address
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.connections_opened = 0

    async def next_invocation(self) -> NextInvocation:
        """Long-poll for the next event (blocks while the sandbox is idle or frozen)."""
        response = await self._exchange("GET", NEXT_PATH, b"", ())
        if response.status != STATUS_OK:
            raise RuntimeAPIError("GET", NEXT_PATH, response.status, response.body)
        headers = response.headers
        request_id = headers.get(REQUEST_ID_HEADER)
        if not request_id:
            raise MalformedAnswer("GET", NEXT_PATH, f"no {REQUEST_ID_HEADER} header")
        try:
            deadline_ms = int(headers.get(DEADLINE_HEADER, "0"))
        except ValueError:
            raise MalformedAnswer("GET", NEXT_PATH, f"{DEADLINE_HEADER} is not a number") from None
        return NextInvocation(
            request_id=request_id,
            deadline_ms=deadline_ms,
            invoked_function_arn=headers.get(FUNCTION_ARN_HEADER, ""),
            trace_id=headers.get(TRACE_ID_HEADER),
            event=response.body,
        )

    async def post_invocation_error(self, request_id: str, error_type: str, body: bytes) -> None:
        """Report a failure; only valid while no byte of the response has been sent."""
        path = ERROR_PATH.format(request_id=request_id)
        await self._post_error(path, error_type, body)

    async def post_init_error(self, error_type: str, body: bytes) -> None:
        """Report that the function could not start; Lambda then discards this sandbox."""
        await self._post_error(INIT_ERROR_PATH, error_type, body)

    async def start_response(self, request_id: str, first_chunk: bytes) -> ResponseStream:
        """Open the streaming POST /response and send its request head with ``first_chunk``."""
        path = RESPONSE_PATH.format(request_id=request_id)
        reader, writer = await self._connection()
        head = _request_head(
            "POST",
            path,
            self._host_header,
            (
                (RESPONSE_MODE_HEADER, RESPONSE_MODE_STREAMING),
                ("Transfer-Encoding", "chunked"),
                # Trailers must be announced in the head to be sent after a chunked body.
                ("Trailer", f"{ERROR_TYPE_HEADER}, {ERROR_BODY_HEADER}"),
                ("Content-Type", HTTP_INTEGRATION_CONTENT_TYPE),
            ),
        )
        writer.write(head + CHUNK_FORMAT % (len(first_chunk), first_chunk))
        stream = ResponseStream(self, path, reader, writer)
        await stream.drain_if_needed()
        return stream

    async def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        writer = self._writer
        self._reader = self._writer = None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    def discard_connection(self) -> None:
        """Forget a connection left in an unknown state (a stream broken halfway)."""
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def _post_error(self, path: str, error_type: str, body: bytes) -> None:
        response = await self._exchange(
            "POST",
            path,
            body,
            ((ERROR_TYPE_HEADER, error_type), ("Content-Type", ERROR_CONTENT_TYPE)),
        )
        if response.status != STATUS_ACCEPTED:
            raise RuntimeAPIError("POST", path, response.status, response.body)

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = self._reader, self._writer
        if reader is not None and writer is not None:
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            self.discard_connection()
        reader, writer = await asyncio.open_connection(self._host, self._port)
        self._reader, self._writer = reader, writer
        self.connections_opened += 1
        return reader, writer

    async def _exchange(
        self, method: str, path: str, body: bytes, headers: tuple[tuple[str, str], ...]
    ) -> Response:
        """Send one buffered request and read its answer.

        A reused keep-alive connection may have been closed by the API while idle; that shows up
        only when we use it, so a request that fails on a reused connection is sent once more on a
        new one. A failure on a fresh connection is real and propagates.
        """
        while True:
            opened = self.connections_opened
            reader, writer = await self._connection()
            reused = self.connections_opened == opened
            head = _request_head(
                method, path, self._host_header, (*headers, ("Content-Length", str(len(body))))
            )
            try:
                writer.write(head + body)
                await writer.drain()
                response = await read_response(reader, method=method.encode())
            except (ConnectionError, asyncio.IncompleteReadError):
                self.discard_connection()
                if reused:
                    continue
                raise
            except ProtocolError as exc:
                self.discard_connection()
                raise MalformedAnswer(method, path, str(exc)) from exc
            if not response.keep_alive:
                self.discard_connection()
            return response


class ResponseStream:
    """The body of one streaming POST /response: one HTTP chunk per ``send``."""

    __slots__ = ("_client", "_path", "_reader", "_transport", "_writer")

    def __init__(
        self,
        client: RuntimeAPIClient,
        path: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self._client = client
        self._path = path
        self._reader = reader
        self._writer = writer
        self._transport = writer.transport

    async def send(self, data: bytes) -> None:
        """Write ``data`` as its own chunk right now; wait only if the socket pushes back.

        ``data`` must not be empty: a zero-length chunk would end the body.
        """
        self._writer.write(CHUNK_FORMAT % (len(data), data))
        # Fast path: the transport sent the bytes at once and the connection is healthy.
        transport = self._transport
        if transport.get_write_buffer_size() or transport.is_closing() or self._reader.at_eof():
            await self.drain_if_needed()

    async def drain_if_needed(self) -> None:
        """Apply back-pressure, or raise if the Runtime API has gone away."""
        # The API answers only after the whole body, so an end of its side now means it is gone:
        # stop at once instead of producing frames nobody reads.
        if self._reader.at_eof():
            raise ConnectionResetError("Runtime API closed the connection mid-stream")
        # Bytes left queued (back-pressure) or a closing connection: drain waits, or raises.
        if self._transport.get_write_buffer_size() or self._transport.is_closing():
            await self._writer.drain()

    async def end(self, trailers: tuple[tuple[str, str], ...] = ()) -> None:
        """Finish the body (with ``trailers`` if given) and read the API's answer."""
        self._writer.write(
            last_chunk([(name.encode(), value.encode()) for name, value in trailers])
        )
        await self._writer.drain()
        try:
            response = await read_response(self._reader)
        except ProtocolError as exc:
            self._client.discard_connection()
            raise MalformedAnswer("POST", self._path, str(exc)) from exc
        if not response.keep_alive:
            self._client.discard_connection()
        if response.status != STATUS_ACCEPTED:
            raise RuntimeAPIError("POST", self._path, response.status, response.body)


def _request_head(method: str, path: str, host: str, headers: tuple[tuple[str, str], ...]) -> bytes:
    fields = [("Host", host), ("User-Agent", USER_AGENT), *headers]
    return request_head(
        method.encode("latin-1"),
        path.encode("latin-1"),
        [(name.encode("latin-1"), value.encode("latin-1")) for name, value in fields],
    )
