"""One connection over an asyncio transport: reads into a bounded buffer, holds a request's
writes until its answer is read, and speaks TLS through ``loop.start_tls``. Failures are
httpx's transport errors (the transport adds the request they belong to)."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque

import httpx

from glm_relay.http_pool.hooks import hands_off

# Writes are held until the answer is read, up to this much (a larger body leaves as it comes).
COALESCE_LIMIT = 64 * 1024
# Reading pauses while this much has arrived unread (a slow reader of a fast answer).
READ_HIGH_WATER = 256 * 1024
_READ_LOW_WATER = READ_HIGH_WATER // 4


class Connection(asyncio.Protocol):
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


async def _wait(connection: Connection, slot: str, timeout: float | None) -> None:
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


class AsyncioStream:
    """One connection. ``tcp`` is the socket's own transport, under the TLS
    one when there is TLS: closing it ends the connection at once, as httpx's default does
    (no TLS close_notify exchange to wait for)."""

    def __init__(
        self,
        transport: asyncio.Transport,
        connection: Connection,
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
        # Why the request could not be written whole, kept until a read finds no answer.
        self._write_failure: httpx.WriteError | None = None

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if self._held:
            await self._send_held()
        connection = self._connection
        if not connection.chunks and not connection.eof:
            try:
                await _wait(connection, "reader", timeout)
            except TimeoutError:
                raise httpx.ReadTimeout("timed out reading") from None
        if connection.chunks:
            return connection.take(max_bytes)
        if self._write_failure is not None:
            raise self._write_failure
        if connection.error is not None:
            raise httpx.ReadError(describe(connection.error))
        return b""  # the server closed the connection

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Hold ``buffer`` until the answer is read (or enough is held to send it now), so that
        a request's head and body leave together."""
        if not buffer or self._write_failure is not None:
            return
        self._held.append(buffer)
        self._held_bytes += len(buffer)
        self._write_timeout = timeout
        if self._held_bytes >= COALESCE_LIMIT:
            await self._send_held()

    async def _send_held(self) -> None:
        """Send what ``write`` held. A connection that breaks meanwhile stops the sending
        without an error yet: a server may answer from the head alone (a 413 for a body over
        its limit) and close, and that answer, already here or on its way, is what the caller
        should get (httpcore reads it too). The next read raises the failure if none came."""
        try:
            await self._send_held_now()
        except httpx.WriteError as exc:
            self._held = []
            self._write_failure = exc

    async def _send_held_now(self) -> None:
        held, size = self._held, self._held_bytes
        self._held = []
        self._held_bytes = 0
        if size <= COALESCE_LIMIT:
            self._check_open()
            self._transport.writelines(held)
            hands_off()
            await self._drained()
            return
        # Larger: in pieces, each once the transport has drained below its high-water mark, so
        # the write timeout bounds every wait for the server and what is buffered stays bounded.
        handed_off = False
        for part in held:
            view = memoryview(part)
            for start in range(0, len(part), COALESCE_LIMIT):
                self._check_open()
                self._transport.write(view[start : start + COALESCE_LIMIT])
                if not handed_off:
                    hands_off()
                    handed_off = True
                await self._drained()

    def _check_open(self) -> None:
        if self._transport.is_closing():
            error = describe(self._connection.error)
            raise httpx.WriteError(error or "the connection is closed")

    async def _drained(self) -> None:
        """Wait while the transport asks writers to pause (``WriteTimeout`` past the write
        timeout, ``WriteError`` if the connection broke meanwhile)."""
        connection = self._connection
        if connection.writing_paused:
            try:
                await _wait(connection, "writer", self._write_timeout)
            except TimeoutError:
                raise httpx.WriteTimeout("timed out writing") from None
            if connection.error is not None:
                raise httpx.WriteError(describe(connection.error))

    async def aclose(self) -> None:
        self.close()

    def close(self) -> None:
        """End the connection now (what ``aclose`` does, callable from a callback too)."""
        self._held = []
        self._tcp.close()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> AsyncioStream:
        if self._tls is not None:
            if self._tls == (ssl_context, server_hostname):
                return self  # opened ahead with this very handshake
            raise httpx.ConnectError("the connection already speaks TLS to another peer")
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(
                    self._transport, self._connection, ssl_context, server_hostname=server_hostname
                )
        except TimeoutError:
            self._tcp.abort()
            raise httpx.ConnectTimeout("timed out in the TLS handshake") from None
        except OSError as exc:  # ssl.SSLError (a certificate refused, too) is an OSError
            self._tcp.abort()
            raise httpx.ConnectError(describe(exc)) from exc
        if transport is None:  # the connection closed during the handshake
            raise httpx.ConnectError("the connection closed during the TLS handshake")
        self._connection.transport = transport
        return AsyncioStream(transport, self._connection, self._tcp, (ssl_context, server_hostname))

    @property
    def tls(self) -> tuple[ssl.SSLContext, str | None] | None:
        """The context and server name of this connection's TLS handshake; ``None``: plain."""
        return self._tls

    @property
    def spent(self) -> bool:
        """Whether the server closed the connection or sent something unasked (no request of
        ours is waiting on an idle connection, so either way it is no use for one), or a request
        on it could not be written whole."""
        connection = self._connection
        return (
            connection.eof
            or bool(connection.chunks)
            or self._transport.is_closing()
            or self._write_failure is not None
        )


def describe(error: BaseException | None) -> str:
    if error is None:
        return ""
    return str(error) or type(error).__name__
