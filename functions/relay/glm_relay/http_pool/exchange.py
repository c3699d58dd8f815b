"""One request's exchange on one pooled connection: its bytes out, the response's head in,
then its body as it arrives (``glm_relay.http_pool.transport`` keeps the connections)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING

import httpx

from glm_relay.http1 import HeadReader, ProtocolError, ResponseHead

if TYPE_CHECKING:
    from glm_relay.http_pool.stream import AsyncioStream

Origin = tuple[str, str, int]
# What a read asks the connection for at most.
_READ_SIZE = 64 * 1024


def as_httpx(exc: Exception, request: httpx.Request) -> httpx.TransportError:
    """``exc`` (a connection's failure, or broken framing) as httpx's, about ``request``."""
    if not isinstance(exc, httpx.TransportError):
        exc = httpx.RemoteProtocolError(str(exc))
    exc.request = request
    return exc


class PooledConnection:
    """One connection of the pool: its stream, where it goes, and since when it is idle."""

    __slots__ = ("heard", "idle_since", "origin", "served", "stream")

    def __init__(self, stream: AsyncioStream, origin: Origin) -> None:
        self.stream = stream
        self.origin = origin
        self.idle_since = 0.0
        self.served = 0  # requests it carried before the one on it now
        self.heard = False  # whether any byte of the current request's answer arrived

    async def exchange(
        self, method: bytes, head: bytes, payload: bytes, timeouts: dict[str, float | None]
    ) -> tuple[ResponseHead, bytes]:
        """Send a request; read up to the end of the response's head. Returns the head and
        the bytes read past it (the start of the body, still framed)."""
        stream = self.stream
        self.heard = False
        # Held, then sent together by the first read: one write, one TLS record for both.
        await stream.write(head, timeouts.get("write"))
        await stream.write(payload, timeouts.get("write"))
        read_timeout = timeouts.get("read")
        heads = HeadReader(method)
        while True:
            data = await stream.read(_READ_SIZE, read_timeout)  # sends what write held
            if not data:
                heads.end()  # raises: the server closed the connection
            self.heard = True
            found = heads.feed(data)
            if found is not None:
                return found


class ResponseBody(httpx.AsyncByteStream):
    """A response's body as it arrives. Read to its end, its connection goes back to the pool
    (if both sides keep it alive); closed before that, the connection is closed."""

    def __init__(
        self,
        connection: PooledConnection,
        head: ResponseHead,
        first: bytes,
        request: httpx.Request,
        read_timeout: float | None,
        release: Callable[[PooledConnection, bool], None],
    ) -> None:
        self._connection = connection
        self._head = head
        self._first = first
        self._request = request
        self._read_timeout = read_timeout
        self._release = release
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        body, request, timeout = self._head.body, self._request, self._read_timeout
        stream = self._connection.stream
        try:
            if self._first:
                data, self._first = self._first, b""
                decoded = body.feed(data)
                if decoded:
                    yield decoded
            while not body.done:
                data = await stream.read(_READ_SIZE, timeout)
                if not data:
                    body.end()
                    break
                decoded = body.feed(data)
                if decoded:
                    yield decoded
        except (httpx.TransportError, ProtocolError) as exc:
            self._finish(reuse=False)
            raise as_httpx(exc, request) from None
        self._finish(reuse=self._head.keep_alive and not body.trailing)

    async def aclose(self) -> None:
        self._finish(reuse=False)

    def _finish(self, *, reuse: bool) -> None:
        if not self._released:
            self._released = True
            self._release(self._connection, reuse)


async def request_payload(request: httpx.Request) -> bytes:
    """The request's body, whole (the relay's requests are JSON documents), unframed."""
    try:
        return request.content
    except httpx.RequestNotRead:
        return b"".join([part async for part in request.stream])  # type: ignore[union-attr]
