"""A local stand-in for a Lambda function URL in RESPONSE_STREAM mode.

It turns each HTTP request into the payload-2.0 event a function URL would send, calls the same
``handle`` the runtime loop calls, and writes the status, the headers and every body frame to the
socket the moment the handler yields it (one HTTP chunk per frame), so a browser sees real
streaming. Like a function URL it answers CORS itself (from ``ALLOWED_ORIGINS``), and unlike
Lambda it notices a client that went away: the body is closed at once, which closes the upstream
request.

Example:
    python -m devtools.local_url --port 3000      # serves glm_relay.handler.handle
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

from glm_relay.runtime import InvocationContext, StreamingResponse, now_ms
from glm_relay.runtime.http1 import CHUNK_FORMAT

Handler = Callable[[dict[str, Any], InvocationContext], Awaitable[StreamingResponse]]

MAX_HEAD_BYTES = 64 * 1024
# A function URL refuses request payloads over 6 MB before the function runs.
MAX_BODY_BYTES = 6 * 1024 * 1024
TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")
CORS_ALLOW_METHODS = "GET, POST"
CORS_ALLOW_HEADERS = "authorization, content-type, last-event-id"
CORS_MAX_AGE = "600"
LOCAL_ARN = "arn:aws:lambda:us-east-1:000000000000:function:glm-relay-local"


class BadRequest(Exception):
    """The bytes on the socket are not an HTTP request we can serve."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class RawRequest:
    """One HTTP request as read off the socket."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


@dataclass(slots=True)
class FunctionUrlConfig:
    """What a function URL is configured with: CORS and the function timeout."""

    allowed_origins: tuple[str, ...] = ("*",)
    timeout_seconds: float = 120.0
    stats: dict[str, int] = field(default_factory=lambda: {"requests": 0, "client_gone": 0})

    def cors_origin(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        if "*" in self.allowed_origins:
            return "*"
        return origin if origin in self.allowed_origins else None


async def read_request(reader: asyncio.StreamReader, peer: str) -> RawRequest | None:
    """Read one request; ``None`` when the client closed an idle keep-alive connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "request head too large") from None
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "malformed request line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "malformed header line")
        headers.append((name.lower(), value.strip()))
    request = RawRequest(parts[0].upper(), parts[1], parts[2], headers, source_ip=peer)
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        request.body = await _read_chunked(reader)
    else:
        length = request.header("content-length") or "0"
        if not length.isdigit():
            raise BadRequest(400, "bad Content-Length")
        if int(length) > MAX_BODY_BYTES:
            raise BadRequest(413, "request payload too large")
        request.body = await reader.readexactly(int(length)) if int(length) else b""
    return request


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            raise BadRequest(400, "malformed chunk size") from None
        if size < 0 or len(body) + size > MAX_BODY_BYTES:
            raise BadRequest(413 if size > 0 else 400, "request payload too large or malformed")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def build_event(request: RawRequest, request_id: str, host: str) -> dict[str, Any]:
    """The payload-2.0 event a function URL sends for ``request``."""
    path, _, raw_query = request.target.partition("?")
    headers: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in request.headers:
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    query: dict[str, str] = {}
    for pair in filter(None, raw_query.split("&")):
        key, _, value = pair.partition("=")
        key, value = unquote(key.replace("+", " ")), unquote(value.replace("+", " "))
        query[key] = f"{query[key]},{value}" if key in query else value
    content_type = headers.get("content-type", "")
    is_text = not request.body or content_type.startswith(TEXT_TYPES)
    if is_text:
        try:
            body = request.body.decode("utf-8")
        except UnicodeDecodeError:
            is_text = False
    if not is_text:
        body = base64.b64encode(request.body).decode()
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": unquote(path) if path else "/",
        "rawQueryString": raw_query,
        "headers": headers,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": request.method,
                "path": unquote(path) if path else "/",
                "protocol": request.version,
                "sourceIp": request.source_ip,
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpochMs": int(now.timestamp() * 1000),
        },
        "body": body if request.body else None,
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    return event


class LocalFunctionUrl:
    """An asyncio HTTP/1.1 server that serves ``handler`` as a streaming function URL."""

    def __init__(self, handler: Handler, config: FunctionUrlConfig | None = None) -> None:
        self.handler = handler
        self.config = config or FunctionUrlConfig()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen and return the base URL."""
        self._server = await asyncio.start_server(
            self._connection, host, port, limit=MAX_HEAD_BYTES
        )
        bound = self._server.sockets[0].getsockname()
        return f"http://{bound[0]}:{bound[1]}"

    async def close(self) -> None:
        """Stop listening and end open connections (idle keep-alives included)."""
        if self._server is not None:
            self._server.close()
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        peer = str((writer.get_extra_info("peername") or ("127.0.0.1",))[0])
        sock = writer.get_extra_info("socket")
        if sock is not None:
            # asyncio leaves Nagle on for accepted sockets; each frame must leave at once.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while True:
                try:
                    request = await read_request(reader, peer)
                except BadRequest as bad:
                    await _write_simple(writer, bad.status, {"Message": str(bad)}, close=True)
                    return
                if request is None:
                    return
                if not await self._serve(request, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(
        self, request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; return whether the connection may carry another."""
        self.config.stats["requests"] += 1
        cors_origin = self.config.cors_origin(request.header("origin"))
        if request.method == "OPTIONS" and request.header("access-control-request-method"):
            # Preflights are answered by the function URL itself, never by the function.
            headers = {"Content-Length": "0"}
            if cors_origin:
                headers.update(
                    {
                        "Access-Control-Allow-Origin": cors_origin,
                        "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
                        "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
                        "Access-Control-Max-Age": CORS_MAX_AGE,
                        "Vary": "Origin",
                    }
                )
            writer.write(_head(204 if cors_origin else 403, headers))
            await writer.drain()
            return request.keep_alive
        request_id = str(uuid.uuid4())
        host = request.header("host") or "127.0.0.1"
        event = build_event(request, request_id, host)
        context = InvocationContext(
            aws_request_id=request_id,
            deadline_ms=now_ms() + int(self.config.timeout_seconds * 1000),
            invoked_function_arn=LOCAL_ARN,
        )
        try:
            response = await self.handler(event, context)
        except Exception:
            # What a function URL answers when the function fails before its first byte.
            await _write_simple(writer, 502, {"Message": "Internal Server Error"}, close=True)
            return False
        headers = dict(response.headers)
        headers["X-Amzn-RequestId"] = request_id
        if cors_origin:
            headers["Access-Control-Allow-Origin"] = cors_origin
            headers["Vary"] = "Origin"
        for cookie in response.cookies:
            headers.setdefault("Set-Cookie", cookie)
        bodyless = response.status_code in (204, 304) or request.method == "HEAD"
        if bodyless:
            await _close_body(response)
            writer.write(_head(response.status_code, headers))
            await writer.drain()
            return request.keep_alive
        headers["Transfer-Encoding"] = "chunked"
        writer.write(_head(response.status_code, headers))
        return await self._stream(response, reader, writer) and request.keep_alive

    async def _stream(
        self,
        response: StreamingResponse,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Write each frame as its own chunk; stop at once if the client goes away."""
        pump = asyncio.ensure_future(_pump(response, writer))
        gone = asyncio.ensure_future(reader.read(1))
        try:
            await asyncio.wait((pump, gone), return_when=asyncio.FIRST_COMPLETED)
            if pump.done():
                return pump.result()
            # The client closed its side (or sent bytes mid-response, which HTTP/1.1 forbids).
            self.config.stats["client_gone"] += 1
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await pump
            return False
        finally:
            if not gone.done():
                gone.cancel()
                # The next request on this connection must not race the cancelled read.
                with contextlib.suppress(asyncio.CancelledError):
                    await gone
            await _close_body(response)


async def _pump(response: StreamingResponse, writer: asyncio.StreamWriter) -> bool:
    try:
        async for frame in response.body:
            if frame:
                writer.write(CHUNK_FORMAT % (len(frame), frame))
                await writer.drain()
    except Exception:
        # A failure after the first byte: a function URL cuts the connection.
        return False
    writer.write(b"0\r\n\r\n")
    await writer.drain()
    return True


async def _close_body(response: StreamingResponse) -> None:
    close = getattr(response.body, "aclose", None)
    if close is not None:
        with contextlib.suppress(Exception):
            await close()


def _head(status: int, headers: dict[str, str]) -> bytes:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")


async def _write_simple(
    writer: asyncio.StreamWriter, status: int, payload: dict[str, str], *, close: bool
) -> None:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    if close:
        headers["Connection"] = "close"
    with contextlib.suppress(ConnectionError):
        writer.write(_head(status, headers) + body)
        await writer.drain()


@contextlib.contextmanager
def running_local_url(
    handler: Handler, config: FunctionUrlConfig | None = None, *, port: int = 0
) -> Iterator[str]:
    """Serve ``handler`` on loopback from a background thread with its own event loop.

    The loop lives as long as the server, as a Lambda container's does, so the handler may keep
    loop-bound state (the pooled httpx client) across requests.
    """
    loop = asyncio.new_event_loop()
    server = LocalFunctionUrl(handler, config)
    started: dict[str, Any] = {}
    ready = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        try:
            started["url"] = loop.run_until_complete(server.start(port=port))
        except BaseException as exc:
            started["error"] = exc
            ready.set()
            return
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="local-function-url", daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in started:
        raise started["error"]
    try:
        yield started["url"]
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


async def serve_forever(
    handler: Handler,
    config: FunctionUrlConfig,
    host: str,
    port: int,
    *,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run until cancelled; ``on_ready`` gets the URL once it listens (default: one line)."""
    server = LocalFunctionUrl(handler, config)
    url = await server.start(host, port)
    if on_ready is None:
        print(f"function URL listening on {url}", flush=True)
    else:
        on_ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=120.0, help="function timeout, seconds")
    args = parser.parse_args()
    import os

    from glm_relay.handler import handle

    origins = tuple(o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "*").split(",") if o)
    config = FunctionUrlConfig(allowed_origins=origins, timeout_seconds=args.timeout)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(handle, config, args.host, args.port))


if __name__ == "__main__":
    main()
