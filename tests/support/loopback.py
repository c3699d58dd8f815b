"""Loopback HTTP/1.1 servers written by hand, for tests of the connection pool: each test's
handler says exactly what the server sends, byte for byte, framing mistakes included."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Callable

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class LoopbackServer:
    """An asyncio TCP server on 127.0.0.1 that counts the connections it accepted."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self.connections = 0
        self.ended = 0  # connections whose handler returned (the client closed, say)
        self.server: asyncio.Server | None = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self._handler(reader, writer)
        finally:
            self.ended += 1
            writer.close()

    async def __aenter__(self) -> LoopbackServer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    ssl: ssl.SSLContext | None = None

    @property
    def port(self) -> int:
        assert self.server is not None
        return int(self.server.sockets[0].getsockname()[1])


async def read_request(reader: asyncio.StreamReader) -> bytes:
    """One HTTP/1.1 request with a Content-Length body, whole."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    return head + await reader.readexactly(length)


def ok(body: bytes, *, close: bool = False) -> bytes:
    connection = b"Connection: close\r\n" if close else b""
    return b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n%s\r\n%s" % (len(body), connection, body)


def serving(answer: Callable[[bytes], Awaitable[bytes]]) -> Handler:
    """A server side that reads requests until the client closes, and writes for each what
    ``answer`` gives (awaited: it may note the request, or take its time)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                request = await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(await answer(request))
            await writer.drain()

    return handler
