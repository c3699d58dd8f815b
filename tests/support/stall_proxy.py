"""A TCP proxy on loopback that can stall: a DynamoDB that stops answering for a while.

Put in front of moto (``DynamoClient(endpoint=proxy.url)``). While ``stall()`` is in force, bytes
are read from either side but not passed on, so requests sent meanwhile wait as they would on a
stalled service (and time out in the client); ``release()`` passes on everything held, in order,
so a request the client gave up on may still land late, as it may on the real service. ``cut()``
closes every open connection and refuses new ones until ``release()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator


class StallingProxy:
    """The proxy, served by its own event loop in a thread."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._flowing = asyncio.Event()
        self._cutting = False
        self._writers: set[asyncio.StreamWriter] = set()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0
        self.connections = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._thread.start()
        self._run(self._start())

    def stop(self) -> None:
        self._run(self._stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def stall(self) -> None:
        self._loop.call_soon_threadsafe(self._flowing.clear)

    def release(self) -> None:
        def flow() -> None:
            self._cutting = False
            self._flowing.set()

        self._loop.call_soon_threadsafe(flow)

    def cut(self) -> None:
        def cut_all() -> None:
            self._cutting = True
            for writer in list(self._writers):
                writer.transport.abort()

        self._loop.call_soon_threadsafe(cut_all)

    def _run(self, coroutine: object) -> None:
        asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(10)  # type: ignore[arg-type]

    async def _start(self) -> None:
        self._flowing.set()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self._cutting:
            writer.transport.abort()
            return
        try:
            target_reader, target_writer = await asyncio.open_connection(*self._target)
        except OSError:
            writer.transport.abort()
            return
        self._writers.update((writer, target_writer))
        try:
            await asyncio.gather(
                self._pump(reader, target_writer), self._pump(target_reader, writer)
            )
        finally:
            for each in (writer, target_writer):
                self._writers.discard(each)
                each.transport.abort()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, ConnectionError):
            while data := await reader.read(65536):
                await self._flowing.wait()
                writer.write(data)
                await writer.drain()
            await self._flowing.wait()
            if writer.can_write_eof():
                writer.write_eof()


@contextlib.contextmanager
def stalling_proxy(target_url: str) -> Iterator[StallingProxy]:
    """A proxy in front of ``http://host:port``, for the life of the block."""
    host, _, port = target_url.removeprefix("http://").rstrip("/").partition(":")
    proxy = StallingProxy(host, int(port))
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.stop()
