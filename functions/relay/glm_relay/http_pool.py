"""The container's pooled HTTP(S) connections: httpx and httpcore over asyncio's own streams.

httpx's default network layer runs through anyio: every read arms a cancel scope and turns the
socket's read registration on and off (two system calls), and a request leaves as two writes,
its head and then its body, each a TLS record and a system call that wakes the server twice.
On the path to an answer's first token that cost about half a millisecond here.
``AsyncioBackend`` plugs into httpcore's network-backend interface instead: each connection
keeps reading into a buffer, and a request's head and body are held until its answer is read,
then leave in one write. httpcore still speaks HTTP/1.1, pools and keeps connections alive;
httpx still maps its errors. Certificates are verified with the context given, always.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import httpcore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

    import httpx

# Writes are held until the answer is read, up to this much (a larger body leaves as it comes).
COALESCE_LIMIT = 64 * 1024
# Reading pauses while this much has arrived unread (a slow reader of a fast answer).
READ_HIGH_WATER = 256 * 1024
_READ_LOW_WATER = READ_HIGH_WATER // 4


_out_of_hands: ContextVar[Callable[[], None] | None] = ContextVar("out_of_hands", default=None)


@contextlib.contextmanager
def when_out_of_hands(callback: Callable[[], None] | None) -> Iterator[None]:
    """Call ``callback`` (maybe more than once) whenever a request this task sends through a
    pool here is out of its hands: written to the wire, or about to wait on a new connection.

    Callers overlap other work with the request from then on, and no earlier: before that point
    the request still needs this task's CPU. (httpcore's ``trace`` extension could say the same,
    at the cost of an awaited callback per step of every request.)
    """
    token = _out_of_hands.set(callback)
    try:
        yield
    finally:
        _out_of_hands.reset(token)


def _hands_off() -> None:
    callback = _out_of_hands.get()
    if callback is not None:
        callback()


class _Connection(asyncio.Protocol):
    """One socket's protocol: what has arrived, and whoever waits for more or for room."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.chunks: deque[bytes] = deque()
        self.buffered = 0
        self.eof = False
        self.error: Exception | None = None
        self.reading_paused = False
        self.reader: asyncio.Future[None] | None = None
        self.writing_paused = False
        self.writer: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.chunks.append(data)
        self.buffered += len(data)
        if self.buffered > READ_HIGH_WATER and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        _wake(self.reader)

    def eof_received(self) -> bool:
        self.eof = True
        _wake(self.reader)
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        _wake(self.reader)
        _wake(self.writer)

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        _wake(self.writer)

    def take(self, max_bytes: int) -> bytes:
        """The oldest bytes that arrived, at most ``max_bytes``."""
        chunk = self.chunks.popleft()
        if len(chunk) > max_bytes:
            chunk, rest = chunk[:max_bytes], chunk[max_bytes:]
            self.chunks.appendleft(rest)
        self.buffered -= len(chunk)
        if self.reading_paused and self.buffered <= _READ_LOW_WATER:
            self.reading_paused = False
            if self.transport is not None and not self.eof:
                self.transport.resume_reading()
        return chunk


def _wake(waiter: asyncio.Future[None] | None) -> None:
    if waiter is not None and not waiter.done():
        waiter.set_result(None)


def _time_out(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


async def _wait(connection: _Connection, slot: str, timeout: float | None) -> None:
    """Wait until ``connection`` wakes its ``reader`` or ``writer`` slot, or ``timeout`` passes
    (``TimeoutError``). One timer handle, no task or cancel scope."""
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()
    setattr(connection, slot, waiter)
    timer = None if timeout is None else loop.call_later(timeout, _time_out, waiter)
    try:
        await waiter
    finally:
        setattr(connection, slot, None)
        if timer is not None:
            timer.cancel()


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection as httpcore sees it. ``tcp`` is the socket's own transport, under the TLS
    one when there is TLS: closing it ends the connection at once, as httpx's default does
    (no TLS close_notify exchange to wait for)."""

    def __init__(
        self,
        transport: asyncio.Transport,
        connection: _Connection,
        tcp: asyncio.Transport,
        tls: tuple[ssl.SSLContext, str | None] | None = None,
    ) -> None:
        self._transport = transport
        self._connection = connection
        self._tcp = tcp
        self._tls = tls  # the context and server name of the handshake done, if any
        self._held: list[bytes] = []
        self._held_bytes = 0
        self._write_timeout: float | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            await self._send_held()
        connection = self._connection
        if not connection.chunks and not connection.eof:
            try:
                await _wait(connection, "reader", timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout("timed out reading") from None
        if connection.chunks:
            return connection.take(max_bytes)
        if connection.error is not None:
            raise httpcore.ReadError(_describe(connection.error))
        return b""  # the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Hold ``buffer`` until the answer is read (or enough is held to send it now), so that
        a request's head and body leave together."""
        if not buffer:
            return
        self._held.append(buffer)
        self._held_bytes += len(buffer)
        self._write_timeout = timeout
        if self._held_bytes >= COALESCE_LIMIT:
            await self._send_held()

    async def _send_held(self) -> None:
        held = self._held
        self._held = []
        self._held_bytes = 0
        connection, transport = self._connection, self._transport
        if transport.is_closing():
            raise httpcore.WriteError(_describe(connection.error) or "the connection is closed")
        transport.writelines(held)
        _hands_off()
        if connection.writing_paused:
            try:
                await _wait(connection, "writer", self._write_timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout("timed out writing") from None
            if connection.error is not None:
                raise httpcore.WriteError(_describe(connection.error))

    async def aclose(self) -> None:
        self._held = []
        self._tcp.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        if self._tls is not None:
            if self._tls == (ssl_context, server_hostname):
                return self  # opened ahead with this very handshake
            raise httpcore.ConnectError("the connection already speaks TLS to another peer")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._connection, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._tcp.abort()
            raise httpcore.ConnectTimeout("timed out in the TLS handshake") from None
        except OSError as exc:  # ssl.SSLError (a certificate refused, too) is an OSError
            self._tcp.abort()
            raise httpcore.ConnectError(_describe(exc)) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpcore.ConnectError("the connection closed during the TLS handshake")
        self._connection.transport = transport
        return AsyncioStream(transport, self._connection, self._tcp, (ssl_context, server_hostname))

    @property
    def spent(self) -> bool:
        """Whether the server closed the connection or sent something unasked (no request of
        ours is waiting on an idle connection, so either way it is no use for one)."""
        connection = self._connection
        return connection.eof or bool(connection.chunks) or self._transport.is_closing()

    def get_extra_info(self, info: str) -> Any:
        transport = self._transport
        if info == "is_readable":
            # Reading never stops, so a kept-alive connection that the server closed has seen
            # its EOF by now; httpcore then opens a new one instead of using it.
            return self.spent
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


def _describe(error: BaseException | None) -> str:
    if error is None:
        return ""
    return str(error) or type(error).__name__


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens ``AsyncioStream`` connections (TCP; TLS comes from ``start_tls``), or hands over
    one opened ahead (``open_ahead``)."""

    def __init__(self) -> None:
        self._ahead: dict[tuple[str, int], asyncio.Task[AsyncioStream]] = {}

    def open_ahead(
        self,
        url: httpx.URL,
        tls: Callable[[], ssl.SSLContext],
        *,
        timeout: float | None = None,
    ) -> None:
        """Start opening a connection to ``url``'s origin in the background (TCP, then TLS with
        the context ``tls()`` gives, for https), for the pool's next connection there to take.

        A container's first request does this before its secret reads and checks, so the
        handshakes' round trips pass meanwhile. The context is asked for only once TCP is up:
        building one loads the whole CA bundle, CPU better spent while the SYN travels.
        """
        port = url.port or (443 if url.scheme == "https" else 80)
        key = (url.raw_host.decode("ascii"), port)
        if key not in self._ahead:
            hostname = key[0] if url.scheme == "https" else None
            self._ahead[key] = asyncio.ensure_future(self._open(key, tls, hostname, timeout))

    async def _open(
        self,
        key: tuple[str, int],
        tls: Callable[[], ssl.SSLContext],
        hostname: str | None,
        timeout: float | None,
    ) -> AsyncioStream:
        stream = await self._connect(*key, timeout)
        if hostname is None:
            return stream
        context = tls()
        context.set_alpn_protocols(["http/1.1"])  # as httpcore asks, for an equal connection
        return await stream.start_tls(context, hostname, timeout)  # type: ignore[return-value]

    async def close_ahead(self) -> None:
        """Close what was opened ahead and never taken."""
        ahead, self._ahead = self._ahead, {}
        for task in ahead.values():
            task.cancel()
            with contextlib.suppress(BaseException):
                await (await task).aclose()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        ahead = self._ahead.pop((host, port), None)
        if ahead is not None:
            stream = await _taken(ahead)
            if stream is not None:
                return stream
        return await self._connect(host, port, timeout, local_address, socket_options)

    async def _connect(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> AsyncioStream:
        loop = asyncio.get_running_loop()
        _hands_off()  # a connection takes round trips; others may use the time
        try:
            async with asyncio.timeout(timeout):
                transport, connection = await loop.create_connection(
                    _Connection,
                    host,
                    port,
                    local_addr=(local_address, 0) if local_address else None,
                )
        except TimeoutError:
            raise httpcore.ConnectTimeout("timed out connecting") from None
        except OSError as exc:
            raise httpcore.ConnectError(_describe(exc)) from exc
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        return AsyncioStream(transport, connection, transport)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("the relay connects over TCP only")

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def _taken(ahead: asyncio.Task[AsyncioStream]) -> AsyncioStream | None:
    """The connection opened ahead, once it is open; ``None`` if that failed or the server has
    closed it since (a fresh attempt then says what is wrong, in its own time)."""
    if not ahead.done():
        _hands_off()  # the handshakes are still under way: round trips
    try:
        stream = await ahead
    except Exception:
        return None
    if stream.spent:
        await stream.aclose()
        return None
    return stream


def pooled_transport(
    context: ssl.SSLContext,
    *,
    max_connections: int | None = None,
    max_keepalive: int | None = None,
    keepalive_expiry: float = 60.0,
    backend: AsyncioBackend | None = None,
) -> httpx.AsyncHTTPTransport:
    """An httpx transport whose connection pool connects through ``AsyncioBackend`` and
    verifies with ``context``.

    httpx's transport takes no network backend, so its pool (the one attribute it sends
    through, ``_pool``, stable across httpx 0.2x and pinned in requirements.txt) is replaced by
    an equal pool that has one; ``tests/unit/test_http_pool.py`` fails if that stops working.
    """
    import httpx

    transport = httpx.AsyncHTTPTransport(verify=context, retries=0)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=context,
        max_connections=max_connections,
        max_keepalive_connections=max_keepalive,
        keepalive_expiry=keepalive_expiry,
        retries=0,
        network_backend=backend or AsyncioBackend(),
    )
    return transport
