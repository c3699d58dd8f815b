"""Opening connections for the pool: fresh ones, or one opened ahead."""

from __future__ import annotations

import asyncio
import ssl
from typing import TYPE_CHECKING

import httpx

from glm_relay.http_pool.hooks import hands_off
from glm_relay.http_pool.stream import AsyncioStream, Connection, describe

if TYPE_CHECKING:
    from collections.abc import Callable


class AsyncioBackend:
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
            task = asyncio.ensure_future(self._open(key, tls, hostname, timeout))
            task.add_done_callback(_settled)  # a failure nobody takes is no error of its own
            self._ahead[key] = task

    async def _open(
        self,
        key: tuple[str, int],
        tls: Callable[[], ssl.SSLContext],
        hostname: str | None,
        timeout: float | None,
    ) -> AsyncioStream:
        stream = await self._connect(key, timeout)
        if hostname is None:
            return stream
        context = tls()
        context.set_alpn_protocols(["http/1.1"])  # as the pool asks, for an equal connection
        return await stream.start_tls(context, hostname, timeout)

    async def close_ahead(self) -> None:
        """Close what was opened ahead and never taken (or stop opening it)."""
        ahead, self._ahead = self._ahead, {}
        for task in ahead.values():
            if task.done():
                _close_opened(task)
            else:
                task.cancel()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None,
        tls: tuple[ssl.SSLContext, str | None] | None = None,
    ) -> AsyncioStream:
        """A connection to ``host:port``: the one opened ahead if it is fit (open, and speaking
        TLS with ``tls``, the context and server name the caller will ask for, or plain if
        ``None``), else a new one."""
        ahead = self._ahead.pop((host, port), None)
        if ahead is not None:
            stream = await _taken(ahead)
            if stream is not None:
                if stream.tls is None or stream.tls == tls:
                    return stream
                stream.close()  # made with another context: no use for this pool
        return await self._connect((host, port), timeout)

    async def _connect(self, address: tuple[str, int], timeout: float | None) -> AsyncioStream:
        """A new TCP connection to ``address`` (asyncio turns Nagle off on it)."""
        host, port = address
        loop = asyncio.get_running_loop()
        hands_off()  # a connection takes round trips; others may use the time
        try:
            async with asyncio.timeout(timeout):
                transport, connection = await loop.create_connection(Connection, host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout("timed out connecting") from None
        except OSError as exc:
            raise httpx.ConnectError(describe(exc)) from exc
        return AsyncioStream(transport, connection, transport)


async def _taken(ahead: asyncio.Task[AsyncioStream]) -> AsyncioStream | None:
    """The connection opened ahead, once it is open; ``None`` if that failed or the server has
    closed it since (a fresh attempt then says what is wrong, in its own time)."""
    if not ahead.done():
        hands_off()  # the handshakes are still under way: round trips
        try:
            await asyncio.wait([ahead])
        except asyncio.CancelledError:
            ahead.add_done_callback(_close_opened)  # the request left; the connection goes too
            raise
    if ahead.cancelled() or ahead.exception() is not None:
        return None
    stream = ahead.result()
    if stream.spent:
        stream.close()
        return None
    return stream


def _settled(task: asyncio.Task[AsyncioStream]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a failed attempt is reported by the fresh one after it


def _close_opened(task: asyncio.Task[AsyncioStream]) -> None:
    if not task.cancelled() and task.exception() is None:
        task.result().close()
