"""An httpx transport that keeps a pool of HTTP/1.1 connections over ``AsyncioStream``.

httpx sends through it like through its own (``handle_async_request`` gives an
``httpx.Response`` whose body streams as it arrives, and failures are httpx's exceptions), but
a request takes one task step from here to the wire: no connection-pool locks that yield to
the event loop, no cancel scopes, and the framing of ``glm_relay.http1``.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING

import httpx

from glm_relay.http1 import ProtocolError, chunked, request_head
from glm_relay.http_pool.backend import AsyncioBackend
from glm_relay.http_pool.exchange import (
    Origin,
    PooledConnection,
    ResponseBody,
    as_httpx,
    request_payload,
)

if TYPE_CHECKING:
    from glm_relay.http_pool.stream import AsyncioStream

_DEFAULT_PORTS = {"http": 80, "https": 443}
# How long an idle connection is kept. DynamoDB's front end closes a connection idle for about
# 60 s; one kept as long races that close (and a sandbox thawed after a freeze may not have
# read the server's FIN yet when it picks the connection). Under half of that leaves the margin;
# a new connection in the region costs a millisecond or two. Zhipu's client sets its own.
IDLE_CONNECTION_SECONDS = 25.0


class PooledTransport(httpx.AsyncBaseTransport):
    """Keeps connections per origin (at most ``max_keepalive`` idle, each for
    ``keepalive_expiry`` seconds; at most ``max_connections`` in all, others wait their turn
    within the pool timeout), verifying TLS with ``context``."""

    def __init__(
        self,
        context: ssl.SSLContext,
        *,
        max_connections: int | None = None,
        max_keepalive: int | None = None,
        keepalive_expiry: float = IDLE_CONNECTION_SECONDS,
        backend: AsyncioBackend | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        context.set_alpn_protocols(["http/1.1"])
        self._context = context
        self._max_connections = max_connections
        self._max_keepalive = max_keepalive
        self._keepalive_expiry = keepalive_expiry
        self._backend = backend or AsyncioBackend()
        self._clock = clock
        self._idle: list[PooledConnection] = []  # the most recently used last
        self._in_use: set[PooledConnection] = set()
        self._open = 0  # connections in use, idle or opening
        self._waiting: deque[asyncio.Future[None]] = deque()
        self._turns = 0  # requests woken to take a released connection, not yet running
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        scheme = url.scheme
        if scheme not in _DEFAULT_PORTS:
            raise httpx.UnsupportedProtocol(
                f"the scheme {scheme!r} is not http(s)", request=request
            )
        origin = (scheme, url.host, url.port or _DEFAULT_PORTS[scheme])
        method = request.method.encode("ascii")
        try:
            # The target is the path and query as httpx encoded them.
            head = request_head(method, url.raw_path, request.headers.raw)
        except ValueError as exc:
            raise httpx.LocalProtocolError(str(exc), request=request) from None
        payload = await request_payload(request)
        if "chunked" in request.headers.get("transfer-encoding", "").lower():
            payload = chunked(payload)  # a streamed body, sent whole but framed as announced
        timeouts = request.extensions.get("timeout") or {}
        fresh = False
        while True:
            connection = await self._acquire(origin, timeouts, request, fresh=fresh)
            try:
                answer, first = await connection.exchange(method, head, payload, timeouts)
                break
            except (httpx.TransportError, ProtocolError) as exc:
                self._release(connection, False)
                if fresh or not _worth_another_connection(connection, exc):
                    raise as_httpx(exc, request) from None
                fresh = True  # once, on a new connection
            except BaseException:
                self._release(connection, False)
                raise
        body = ResponseBody(connection, answer, first, request, timeouts.get("read"), self._release)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=body,
            extensions={"http_version": b"HTTP/1.1", "reason_phrase": answer.reason},
            request=request,
        )

    def _idle_connection(self, origin: Origin) -> PooledConnection | None:
        """The most recently used idle connection to ``origin`` still fit for a request;
        the expired and the ones the server closed are closed on the way."""
        if not self._idle:
            return None
        now = self._clock()
        for index in range(len(self._idle) - 1, -1, -1):
            connection = self._idle[index]
            stale = now - connection.idle_since > self._keepalive_expiry
            if stale or connection.stream.spent:
                del self._idle[index]
                self._drop(connection)  # its room goes to the next in line, if any
            elif connection.origin == origin:
                del self._idle[index]
                return connection
        return None

    async def _acquire(
        self,
        origin: Origin,
        timeouts: dict[str, float | None],
        request: httpx.Request,
        *,
        fresh: bool = False,
    ) -> PooledConnection:
        """An idle connection to ``origin`` (unless ``fresh``), or a new one once there is room.

        Requests that find no room wait in turn, first come first served: a request that
        arrives while others wait queues behind them. The pool timeout bounds the whole wait.
        """
        pool_timeout = timeouts.get("pool")
        deadline: float | None = None  # set once this request first has to wait
        my_turn = False
        while True:
            if self._closed:
                raise httpx.ConnectError("the connection pool was closed", request=request)
            if my_turn or not (self._waiting or self._turns):
                connection = None if fresh else self._idle_connection(origin)
                if connection is not None:
                    self._in_use.add(connection)
                    return connection
                if self._max_connections is None or self._open < self._max_connections:
                    break
                if self._idle:  # an idle connection to another origin gives way to this one
                    self._close(self._idle.pop(0))
                    break
            now = asyncio.get_running_loop().time()
            if deadline is None and pool_timeout is not None:
                deadline = now + pool_timeout
            remaining = None if deadline is None else deadline - now
            try:
                if remaining is not None and remaining <= 0:
                    raise TimeoutError
                await self._wait_turn(remaining, first=my_turn)
            except TimeoutError:
                message = "no connection was free in time"
                raise httpx.PoolTimeout(message, request=request) from None
            my_turn = True
        connection = await self._connect(origin, timeouts.get("connect"), request)
        self._in_use.add(connection)
        return connection

    async def _connect(
        self, origin: Origin, timeout: float | None, request: httpx.Request
    ) -> PooledConnection:
        """Open a connection to ``origin``, counted in while it opens."""
        self._open += 1
        scheme, host, port = origin
        tls = (self._context, host) if scheme == "https" else None
        stream: AsyncioStream | None = None
        try:
            stream = await self._backend.connect_tcp(host, port, timeout, tls)
            if tls is not None:
                stream = await stream.start_tls(self._context, host, timeout)
        except BaseException as exc:
            if stream is not None:
                stream.close()
            self._open -= 1
            self._hand_on()
            if isinstance(exc, httpx.TransportError):
                raise as_httpx(exc, request) from None
            raise
        return PooledConnection(stream, origin)

    async def _wait_turn(self, timeout: float | None, *, first: bool) -> None:
        """Wait until a connection is released (``TimeoutError`` after ``timeout``); ``first``:
        ahead of the others (a request whose turn came but found no room after all)."""
        waiter = asyncio.get_running_loop().create_future()
        if first:
            self._waiting.appendleft(waiter)
        else:
            self._waiting.append(waiter)
        try:
            async with asyncio.timeout(timeout):
                await waiter
        except BaseException:
            if waiter in self._waiting:
                self._waiting.remove(waiter)
            elif not waiter.cancelled():
                self._turns -= 1
                self._hand_on()  # woken, but leaving: the next in line gets the turn
            raise
        self._turns -= 1

    def _release(self, connection: PooledConnection, reuse: bool) -> None:
        """A response is done with ``connection``: keep it for the next request, or close it."""
        self._in_use.discard(connection)
        if reuse and not self._closed and not connection.stream.spent:
            connection.idle_since = self._clock()
            connection.served += 1
            self._idle.append(connection)
            if self._max_keepalive is not None and len(self._idle) > self._max_keepalive:
                self._drop(self._idle.pop(0))
            self._hand_on()
            return
        self._drop(connection)

    def _close(self, connection: PooledConnection) -> None:
        """Close ``connection`` and count it out."""
        connection.stream.close()
        self._open -= 1

    def _drop(self, connection: PooledConnection) -> None:
        """Close ``connection`` and give its room to the next request in line."""
        self._close(connection)
        self._hand_on()

    def _hand_on(self) -> None:
        """Give the turn to the first request waiting for room or for an idle connection."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                self._turns += 1
                return

    async def aclose(self) -> None:
        """Close every connection, idle or in use (their bodies end in errors), and fail the
        requests waiting for one; the transport sends nothing after this."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            self._close(connection)
        for connection in list(self._in_use):
            connection.stream.close()  # counted out when its body ends
        while self._waiting:
            self._hand_on()  # each wakes, sees the pool closed and fails
        await self._backend.close_ahead()


def _worth_another_connection(connection: PooledConnection, exc: Exception) -> bool:
    """Whether a request that failed on ``connection`` goes again on a new one: the connection
    had served before (kept alive, it may have been closed by the server at that very moment,
    or while the sandbox was frozen), no byte of an answer came, and the failure is a broken
    connection, not a timeout (a server still working on the request). Such a request never
    got past the server's first read, so sending it again does not repeat it; its body is
    held whole (``request_payload``), so it can be. Browsers resend a request in this one case
    too, whatever its method."""
    return (
        connection.served > 0
        and not connection.heard
        and not isinstance(exc, httpx.TimeoutException)
    )
