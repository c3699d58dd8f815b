"""A local stand-in for a Lambda function URL in RESPONSE_STREAM mode, or for an API Gateway
REST API stage that streams (``FunctionUrlConfig(rest_api_stage="api")``).

It turns each HTTP request into the event that front door would send (``devtools.front_doors``:
payload 2.0, or the REST proxy's 1.0 under ``/<stage>/``), runs the handler through the runtime
loop's own invoke path (``call_handler`` and ``pump``), reads the prelude and its 8-NUL delimiter
off the stream as both doors do, and writes the status, the headers and every body frame to the
socket the moment the handler yields it (one HTTP chunk per frame), so a browser sees real
streaming. As a function URL it answers CORS itself (from ``ALLOWED_ORIGINS``); as a REST API it
leaves CORS to the function. With ``keep_running`` (``make run``, this module's command line) a
client that leaves does not stop the answer, as on Lambda: the body runs to its end, discarded,
and what it records completes. Without it (``--no-keep-running``) the body is closed at once.

Example:
    python -m devtools.local_url --port 3000               # serves glm_relay.handler.handle
    python -m devtools.local_url --rest-api-stage api      # the same, as http://.../api/
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from devtools.front_doors import FrontDoor, FunctionUrlDoor, Reply, RestApiDoor
from devtools.http11 import (
    MAX_HEAD_BYTES,
    BadRequest,
    RawRequest,
    read_request,
    response_head,
    write_simple,
)
from devtools.url_body import ClientSink, read_prelude, run_on, send_all
from glm_relay.runtime import InvocationContext, StreamingResponse, now_ms
from glm_relay.runtime.loop import HandlerFailed, call_handler, close_body

CLOSE_WAIT_SECONDS = 3.0
Handler = Callable[[dict[str, Any], InvocationContext], Awaitable[StreamingResponse]]

LOCAL_ARN = "arn:aws:lambda:us-east-1:000000000000:function:glm-relay-local"


@dataclass(slots=True)
class FunctionUrlConfig:
    """What the front door is configured with: CORS, the function timeout, what a client that
    leaves mid-answer does to the invocation (``keep_running``: nothing, as on Lambda), and
    ``rest_api_stage``: set, the door is an API Gateway REST API serving that stage instead."""

    allowed_origins: tuple[str, ...] = ("*",)
    timeout_seconds: float = 120.0
    keep_running: bool = False
    rest_api_stage: str | None = None
    stats: dict[str, int] = field(default_factory=lambda: {"requests": 0, "client_gone": 0})

    def front_door(self) -> FrontDoor:
        if self.rest_api_stage is not None:
            return RestApiDoor(self.rest_api_stage)
        return FunctionUrlDoor(self.allowed_origins)


class LocalFunctionUrl:
    """An asyncio HTTP/1.1 server that serves ``handler`` as a streaming function URL."""

    def __init__(self, handler: Handler, config: FunctionUrlConfig | None = None) -> None:
        self.handler = handler
        self.config = config or FunctionUrlConfig()
        self.door = self.config.front_door()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self._left_running: set[asyncio.Task[None]] = set()

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
            # Bounded: an answer's bookkeeping (quota, history, its record) is shielded from
            # cancellation and may outlast the server by a moment; shutting down does not wait.
            tasks = [*self._connections, *self._left_running]
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=CLOSE_WAIT_SECONDS)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)

    def drop_connections(self) -> int:
        """Cut every open connection at once, as a network blip would; returns how many."""
        writers = list(self._writers)
        for writer in writers:
            writer.transport.abort()
        return len(writers)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        self._writers.add(writer)
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
                    await write_simple(writer, bad.status, {"Message": str(bad)}, close=True)
                    return
                if request is None:
                    return
                if not await self._serve(request, reader, writer):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _serve(
        self, request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Serve one request; return whether the connection may carry another."""
        self.config.stats["requests"] += 1
        reply = self.door.before(request)
        if reply is not None:
            await _write_reply(writer, reply)
            return request.keep_alive
        request_id = str(uuid.uuid4())
        event = self.door.event(request, request_id)
        context = InvocationContext(
            aws_request_id=request_id,
            deadline_ms=now_ms() + int(self.config.timeout_seconds * 1000),
            invoked_function_arn=LOCAL_ARN,
        )
        try:
            body, first_chunk = await call_handler(self.handler, event, context)
        except HandlerFailed:
            # What the door answers when the function fails before its first byte.
            await _write_reply(writer, self.door.failure)
            return False
        status, headers = read_prelude(first_chunk)
        headers["X-Amzn-RequestId"] = request_id
        self.door.add_headers(request, headers)
        if status in (204, 304) or request.method == "HEAD":
            await close_body(body, request_id)
            writer.write(response_head(status, headers))
            await writer.drain()
            return request.keep_alive
        headers["Transfer-Encoding"] = "chunked"
        writer.write(response_head(status, headers))
        return await self._stream(body, request_id, reader, writer) and request.keep_alive

    async def _stream(
        self,
        body: AsyncIterator[bytes],
        request_id: str,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> bool:
        """Write each frame as its own chunk; if the client goes away, stop at once (or, with
        ``keep_running``, read the body to its end and discard it, as Lambda does)."""
        sink = ClientSink(writer, keep_running=self.config.keep_running)
        sending = asyncio.ensure_future(send_all(body, sink))
        gone = asyncio.ensure_future(reader.read(1))
        left_running = False
        try:
            await asyncio.wait((sending, gone), return_when=asyncio.FIRST_COMPLETED)
            if sending.done() and not sink.gone:
                return sending.result()
            # The client closed its side (or sent bytes mid-response, which HTTP/1.1 forbids).
            self.config.stats["client_gone"] += 1
            if self.config.keep_running:
                sink.gone = left_running = True
                task = asyncio.ensure_future(run_on(sending, body, request_id))
                self._left_running.add(task)
                task.add_done_callback(self._left_running.discard)
                return False
            sending.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sending
            return False
        finally:
            if not gone.done():
                gone.cancel()
                # The next request on this connection must not race the cancelled read.
                with contextlib.suppress(asyncio.CancelledError):
                    await gone
            if not left_running:
                await close_body(body, request_id)


async def _write_reply(writer: asyncio.StreamWriter, reply: Reply) -> None:
    """An answer of the door's own: a short JSON body, or none."""
    if reply.payload is not None:
        close = reply.headers.get("Connection") == "close"
        await write_simple(writer, reply.status, reply.payload, close=close)
        return
    writer.write(response_head(reply.status, reply.headers))
    await writer.drain()


@dataclass(slots=True)
class ServingThread:
    """A ``LocalFunctionUrl`` served from a background thread, reachable from other threads."""

    url: str
    server: LocalFunctionUrl
    loop: asyncio.AbstractEventLoop

    def drop_connections(self) -> int:
        """Cut every open connection now (see ``LocalFunctionUrl.drop_connections``)."""

        async def drop() -> int:
            return self.server.drop_connections()

        return asyncio.run_coroutine_threadsafe(drop(), self.loop).result(5)


@contextlib.contextmanager
def running_local_url(
    handler: Handler, config: FunctionUrlConfig | None = None, *, port: int = 0
) -> Iterator[str]:
    """Serve ``handler`` on loopback from a background thread with its own event loop.

    The loop lives as long as the server, as a Lambda container's does, so the handler may keep
    loop-bound state (the pooled httpx client) across requests.
    """
    with serving_thread(handler, config, port=port) as serving:
        yield serving.url


@contextlib.contextmanager
def serving_thread(
    handler: Handler, config: FunctionUrlConfig | None = None, *, port: int = 0
) -> Iterator[ServingThread]:
    """``running_local_url``, giving the server and its loop too (to cut connections)."""
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
        _finish_tasks(loop)

    thread = threading.Thread(target=run, name="local-function-url", daemon=True)
    thread.start()
    ready.wait(10)
    if "error" in started:
        raise started["error"]
    try:
        yield ServingThread(started["url"], server, loop)
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def _finish_tasks(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what still runs on a stopped loop and let it end, as ``asyncio.run`` does: no
    coroutine (a connection accepted while the server closed) is finalised after the loop."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())


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
        stage = config.rest_api_stage
        where = f"REST API stage listening on {url}/{stage}/" if stage else None
        print(where or f"function URL listening on {url}", flush=True)
    else:
        on_ready(url)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


KEEP_RUNNING_HELP = "as Lambda, a client that leaves does not stop the answer (default: on)"
REST_API_STAGE_HELP = "be an API Gateway REST API stage (payload 1.0 events, under /STAGE/)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument("--timeout", type=float, default=120.0, help="function timeout, seconds")
    keep_running = argparse.BooleanOptionalAction
    parser.add_argument("--keep-running", action=keep_running, default=True, help=KEEP_RUNNING_HELP)
    parser.add_argument("--rest-api-stage", metavar="STAGE", help=REST_API_STAGE_HELP)
    args = parser.parse_args()
    from glm_relay.handler import handle

    origins = tuple(o.strip() for o in os.environ.get("ALLOWED_ORIGINS", "*").split(",") if o)
    config = FunctionUrlConfig(
        allowed_origins=origins,
        timeout_seconds=args.timeout,
        keep_running=args.keep_running,
        rest_api_stage=args.rest_api_stage,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(handle, config, args.host, args.port))


if __name__ == "__main__":
    main()
