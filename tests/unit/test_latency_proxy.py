"""The benchmarks' delaying TCP proxy (bench/latency_proxy.py): every chunk arrives its own
delay after it was sent, in order, with its pacing kept; an end of stream travels the same way."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from bench.latency_proxy import TO_CLIENT, TO_SERVER, LatencyProxy

ONE_WAY = 0.04
# Timers here fire up to a millisecond late, and the machine is shared: a delay may be longer
# than asked by this much, never shorter.
SLACK = 0.025


@dataclass
class Target:
    """The server behind the proxy: stamps what it reads, writes what it is told."""

    received: list[tuple[float, bytes]] = field(default_factory=list)
    eof_at: float | None = None
    writer: asyncio.StreamWriter | None = None
    connected: asyncio.Event = field(default_factory=asyncio.Event)

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.connected.set()
        loop = asyncio.get_running_loop()
        while data := await reader.read(65536):
            self.received.append((loop.time(), data))
        self.eof_at = loop.time()


@pytest.fixture
async def target() -> AsyncIterator[tuple[Target, int]]:
    server_side = Target()
    server = await asyncio.start_server(server_side.serve, "127.0.0.1", 0)
    yield server_side, server.sockets[0].getsockname()[1]
    server.close()


async def proxied(port: int, *, handshake: bool) -> AsyncIterator[LatencyProxy]:
    proxy = LatencyProxy(("127.0.0.1", port), ONE_WAY, handshake=handshake)
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.close()


@pytest.fixture
async def proxy(target: tuple[Target, int]) -> AsyncIterator[LatencyProxy]:
    async for running in proxied(target[1], handshake=False):
        yield running


@pytest.fixture
async def handshaking_proxy(target: tuple[Target, int]) -> AsyncIterator[LatencyProxy]:
    async for running in proxied(target[1], handshake=True):
        yield running


def held(delay: float) -> bool:
    return ONE_WAY <= delay <= ONE_WAY + SLACK


async def test_each_chunk_arrives_one_delay_after_it_was_sent_in_order_and_paced(
    target: tuple[Target, int], proxy: LatencyProxy
) -> None:
    server_side, _ = target
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    sent: list[float] = []
    for index in range(8):  # 10 ms apart: each chunk is on the wire before the last one arrives
        writer.write(b"%d;" % index)
        sent.append(loop.time())
        await asyncio.sleep(0.01)
    await server_side.connected.wait()
    while len(b"".join(data for _, data in server_side.received)) < 16:
        await asyncio.sleep(0.005)

    assert b"".join(data for _, data in server_side.received) == b"0;1;2;3;4;5;6;7;"
    # When each chunk arrived (the read that completed it: chunks sent apart arrive apart).
    arrivals = [at for at, data in server_side.received for _ in range(data.count(b";"))]
    # Each one its own delay after it was sent: the last is no later than the first.
    assert all(held(at - when) for at, when in zip(arrivals, sent, strict=True))

    # The other way: the server answers three chunks 15 ms apart.
    assert server_side.writer is not None
    answered: list[float] = []
    for index in range(3):
        server_side.writer.write(b"answer %d\n" % index)
        answered.append(loop.time())
        await asyncio.sleep(0.015)
    got = [(await reader.readline(), loop.time()) for _ in range(3)]

    assert [line for line, _ in got] == [b"answer 0\n", b"answer 1\n", b"answer 2\n"]
    assert all(held(at - when) for (_, at), when in zip(got, answered, strict=True))
    (connection,) = proxy.connections
    assert [d for d, _ in connection.flights()] == [TO_SERVER, TO_CLIENT]
    assert all(0 <= ms <= SLACK * 1000 for ms in connection.lateness_ms())
    writer.close()


async def test_a_new_connection_pays_a_round_trip_before_its_first_bytes_an_early_one_not(
    target: tuple[Target, int], handshaking_proxy: LatencyProxy
) -> None:
    server_side, _ = target
    loop = asyncio.get_running_loop()
    # Sends at once: held for the handshake's round trip, then the one-way delay.
    connected = loop.time()
    _, eager = await asyncio.open_connection("127.0.0.1", handshaking_proxy.port)
    eager.write(b"now")
    await server_side.connected.wait()
    while not server_side.received:
        await asyncio.sleep(0.005)
    assert 3 * ONE_WAY <= server_side.received[0][0] - connected <= 3 * ONE_WAY + SLACK
    eager.close()

    # Connected ahead (a pre-connected pool), sends later: only the one-way delay.
    server_side.received.clear()
    _, early = await asyncio.open_connection("127.0.0.1", handshaking_proxy.port)
    await asyncio.sleep(2 * ONE_WAY + 0.01)
    early.write(b"later")
    sent = loop.time()
    while not any(data == b"later" for _, data in server_side.received):
        await asyncio.sleep(0.005)
    assert held(server_side.received[-1][0] - sent)
    early.close()


async def test_a_close_reaches_the_other_side_after_the_data_sent_before_it(
    target: tuple[Target, int], proxy: LatencyProxy
) -> None:
    server_side, _ = target
    loop = asyncio.get_running_loop()

    # The client closes: the server gets the last bytes, then the end, each one delay late.
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"last words")
    await asyncio.sleep(0.02)
    writer.close()
    closed = loop.time()
    await writer.wait_closed()
    await server_side.connected.wait()
    while server_side.eof_at is None:
        await asyncio.sleep(0.005)
    assert server_side.received[-1][1] == b"last words"
    assert held(server_side.eof_at - closed)

    # The server closes after writing: the client reads everything, then the end.
    server_side.connected.clear()
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    await server_side.connected.wait()
    assert server_side.writer is not None
    server_side.writer.write(b"goodbye")
    await asyncio.sleep(0.02)
    server_side.writer.close()
    closed = loop.time()

    assert await reader.read() == b"goodbye"
    assert held(loop.time() - closed)
    writer.close()
    # Both directions ended: the proxy let go of both connections.
    await asyncio.sleep(ONE_WAY + SLACK)
    assert all(c.chunks[-1].size == 0 for c in proxy.connections)
