"""A TCP proxy on loopback that delays each direction by a fixed time: a WAN link on one machine.

Where ``tc netem`` is missing (no ``sch_netem`` in the kernel, no network namespaces), the
benchmarks put this proxy between a relay and what it calls. Every chunk read from one side is
written to the other ``one_way_s`` after it arrived, in order: pacing is kept (chunks 5 ms apart
leave 5 ms apart), and a late write does not push the next one back, since each chunk's time is
its own arrival plus the delay. An end of stream travels the same way: when one side closes
(or shuts down its writing half), the other side's writing half is shut down once everything
sent before has been delivered, and the connection is closed when both directions have ended.

The TCP handshake is on loopback and instant, so by default (``handshake=True``) the client's
first bytes are also held until one round trip after the connection was accepted: on a real link
a client can send only once the server's SYN-ACK came back. A connection opened early and used
later (a pre-connected pool) pays nothing for it, as on a real link. Only client-speaks-first
protocols (HTTP, TLS) are modelled this way. Bandwidth and loss are not modelled.

Each connection is recorded (``LatencyProxy.connections``): when it was accepted, and every chunk
with its direction, size, arrival and delivery (``time.perf_counter_ns()``), so a benchmark can
count the round trips a request took and check the delays actually applied.

    python -m bench.latency_proxy --one-way-ms 50 HOST PORT    # prints "latency proxy ready port=N"
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

READY_PREFIX = "latency proxy ready port="
READ_SIZE = 262144
TO_SERVER = ">"
TO_CLIENT = "<"


@dataclass
class Chunk:
    direction: str  # TO_SERVER or TO_CLIENT
    size: int  # 0: the end of the stream
    arrived_ns: int
    held_ns: int  # how long it was to be held (the delay, and a first chunk's handshake)
    delivered_ns: int | None = None


@dataclass
class Connection:
    accepted_ns: int
    chunks: list[Chunk] = field(default_factory=list)

    def data(self, direction: str | None = None) -> list[Chunk]:
        """The chunks that carried bytes (not ends of stream), in one direction or both."""
        return [c for c in self.chunks if c.size and direction in (None, c.direction)]

    def flights(self) -> list[tuple[str, int]]:
        """Runs of data in one direction, in arrival order: ``[(direction, first arrival)]``.

        A client's request and the server's answer to it are two flights, so the client's
        flights are the round trips it waited for (the TCP handshake, modelled, not counted).
        """
        runs: list[tuple[str, int]] = []
        for chunk in sorted(self.data(), key=lambda c: c.arrived_ns):
            if not runs or runs[-1][0] != chunk.direction:
                runs.append((chunk.direction, chunk.arrived_ns))
        return runs

    def lateness_ms(self) -> list[float]:
        """How much later than its time each delivered chunk was written (timers fire late)."""
        return [
            (c.delivered_ns - c.arrived_ns - c.held_ns) / 1e6
            for c in self.chunks
            if c.delivered_ns is not None
        ]


class LatencyProxy:
    """Listens on ``host`` (port 0: any free one) and forwards to ``target`` with the delays.

    Example:
        proxy = LatencyProxy(("127.0.0.1", 8443), one_way_s=0.05)   # 100 ms round trip
        port = await proxy.start()
        ...
        await proxy.close()
    """

    def __init__(
        self,
        target: tuple[str, int],
        one_way_s: float,
        *,
        handshake: bool = True,
        host: str = "127.0.0.1",
    ) -> None:
        self.target = target
        self.one_way_s = one_way_s
        self.handshake = handshake
        self.host = host
        self.port = 0
        self.connections: list[Connection] = []
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, 0)
        self.port = int(self._server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        """Stop listening and cut every connection still open."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.wait(self._tasks)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        loop = asyncio.get_running_loop()
        accepted = loop.time()
        connection = Connection(time.perf_counter_ns())
        self.connections.append(connection)
        _no_delay(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            _no_delay(up_writer)
            first = accepted + 2 * self.one_way_s if self.handshake else accepted
            await asyncio.gather(
                self._pump(reader, up_writer, connection, TO_SERVER, not_before=first),
                self._pump(up_reader, writer, connection, TO_CLIENT, not_before=accepted),
            )
        except OSError:
            pass  # the target refused: the client sees its connection closed
        except asyncio.CancelledError:
            pass  # the proxy is closing (asyncio would log a cancelled connection task)
        finally:
            self._tasks.discard(task)
            for side in (writer, up_writer):
                if side is None:
                    continue
                if task.cancelling():
                    side.transport.abort()
                else:
                    side.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        connection: Connection,
        direction: str,
        *,
        not_before: float,
    ) -> None:
        """Read ``reader`` as fast as it gives, deliver each chunk to ``writer`` at its time."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes, Chunk]] = asyncio.Queue()

        async def deliver() -> None:
            broken = False  # the other side is gone: what it can no longer take is dropped
            while True:
                due, data, chunk = await queue.get()
                delay = due - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                if not broken:
                    try:
                        if data:
                            writer.write(data)
                            await writer.drain()
                        elif writer.can_write_eof():
                            writer.write_eof()
                        else:
                            writer.close()
                        chunk.delivered_ns = time.perf_counter_ns()
                    except (OSError, RuntimeError):
                        broken = True
                if not data:
                    return

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                try:
                    data = await reader.read(READ_SIZE)
                except OSError:
                    data = b""
                arrived_ns, now = time.perf_counter_ns(), loop.time()
                due = max(now, not_before) + self.one_way_s
                chunk = Chunk(direction, len(data), arrived_ns, round((due - now) * 1e9))
                connection.chunks.append(chunk)
                queue.put_nowait((due, data, chunk))
                if not data:
                    break
            await delivering
        finally:
            delivering.cancel()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@contextlib.contextmanager
def running_proxy(
    target: tuple[str, int], one_way_s: float, *, handshake: bool = True
) -> Iterator[LatencyProxy]:
    """A ``LatencyProxy`` on its own event loop in a daemon thread (for blocking callers)."""
    loop = asyncio.new_event_loop()
    proxy = LatencyProxy(target, one_way_s, handshake=handshake)
    thread = threading.Thread(target=loop.run_forever, name="latency-proxy", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(10)
        yield proxy
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(proxy.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        if not thread.is_alive():
            loop.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.latency_proxy", description=__doc__)
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("--one-way-ms", type=float, default=50.0, help="delay each way (50)")
    parser.add_argument(
        "--no-handshake", action="store_true", help="do not hold a client's first bytes one RTT"
    )
    args = parser.parse_args(argv)

    async def serve() -> None:
        proxy = LatencyProxy(
            (args.host, args.port), args.one_way_ms / 1000, handshake=not args.no_handshake
        )
        print(READY_PREFIX + str(await proxy.start()), flush=True)
        await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
