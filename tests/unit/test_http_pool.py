"""The container's connection pool (``glm_relay.http_pool``) against real loopback servers.

What a server sees: a request's head and body held until its answer is read, then one write;
large bodies not held; kept-alive connections reused, and replaced when the server closed them
while idle; TLS verified against the context given. What a caller sees: timeouts, resets and
refused connections as httpx's errors, and a fast answer read whole by a slow reader.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import struct
from collections.abc import AsyncIterator

import httpx
import pytest

from glm_relay.http_pool import (
    COALESCE_LIMIT,
    READ_HIGH_WATER,
    AsyncioBackend,
    AsyncioStream,
    PooledTransport,
    when_out_of_hands,
)
from tests.support.loopback import Handler, LoopbackServer, ok, read_request, serving


async def open_stream(port: int) -> AsyncioStream:
    return await AsyncioBackend().connect_tcp("127.0.0.1", port, timeout=2)


async def test_a_request_is_held_until_its_answer_is_read_then_leaves_in_one_write() -> None:
    arrived: list[bytes] = []
    quiet_before_read: list[bool] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.wait_for(reader.read(1), 0.1)
            quiet_before_read.append(False)
        except TimeoutError:
            quiet_before_read.append(True)
        arrived.append(await reader.read(65536))
        writer.write(b"answer")
        await writer.drain()

    async with LoopbackServer(handler) as server:
        stream = await open_stream(server.port)
        await stream.write(b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\n")
        await stream.write(b"body")
        await asyncio.sleep(0.2)  # the server's 0.1 s look finds nothing
        assert await stream.read(1024) == b"answer"
        await stream.aclose()
    assert quiet_before_read == [True]
    assert arrived == [b"POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nbody"]


async def test_a_large_body_leaves_without_waiting_for_a_read() -> None:
    body = bytes(range(256)) * (2 * COALESCE_LIMIT // 256)
    received = asyncio.get_running_loop().create_future()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        received.set_result(await reader.readexactly(len(body)))

    async with LoopbackServer(handler) as server:
        stream = await open_stream(server.port)
        await stream.write(body)
        assert await asyncio.wait_for(received, 5) == body
        await stream.aclose()


async def test_a_fast_answer_read_slowly_arrives_whole_with_bounded_buffering() -> None:
    answer = bytes(range(256)) * (8 * READ_HIGH_WATER // 256)

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(answer)
        await writer.drain()

    async with LoopbackServer(handler) as server:
        stream = await open_stream(server.port)
        got = bytearray()
        most_buffered = 0
        while chunk := await stream.read(16 * 1024, timeout=5):
            got += chunk
            most_buffered = max(most_buffered, stream._connection.buffered)  # type: ignore[attr-defined]
            await asyncio.sleep(0)
        await stream.aclose()
    assert bytes(got) == answer
    assert most_buffered <= READ_HIGH_WATER + 256 * 1024  # paused past the mark (one read more)


async def test_a_silent_server_is_a_read_timeout_and_a_reset_is_a_read_error() -> None:
    release = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()

    async with LoopbackServer(silent) as server:
        stream = await open_stream(server.port)
        with pytest.raises(httpx.ReadTimeout):
            await stream.read(1024, timeout=0.05)
        release.set()
        await stream.aclose()

    async def close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(1)
        linger_zero = struct.pack("ii", 1, 0)  # closing then sends a reset, not a FIN
        writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger_zero)
        writer.transport.abort()

    async with LoopbackServer(close) as server:
        stream = await open_stream(server.port)
        await stream.write(b"x")
        assert await stream.read(1024, timeout=2) == b""  # the end of the stream
        await stream.aclose()

    async with LoopbackServer(reset) as server:
        stream = await open_stream(server.port)
        await stream.write(b"x")
        with pytest.raises(httpx.ReadError):
            await stream.read(1024, timeout=2)
        await stream.aclose()


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with LoopbackServer(lambda r, w: asyncio.sleep(0)) as server:
        port = server.port
    await asyncio.sleep(0.05)
    transport = PooledTransport(ssl.create_default_context())
    with pytest.raises(httpx.ConnectError):
        await transport.handle_async_request(httpx.Request("GET", f"http://127.0.0.1:{port}/"))
    await transport.aclose()


async def _get(transport: httpx.AsyncHTTPTransport, url: str) -> bytes:
    response = await transport.handle_async_request(httpx.Request("POST", url, content=b'{"q": 1}'))
    try:
        return b"".join([part async for part in response.aiter_raw()])
    finally:
        await response.aclose()


async def test_kept_alive_connections_are_reused_and_replaced_once_the_server_closed_them() -> None:
    requests: list[bytes] = []
    close_after_answer = [False]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                requests.append(await read_request(reader))
            except asyncio.IncompleteReadError:
                return
            writer.write(ok(b"answer %d" % len(requests)))
            await writer.drain()
            if close_after_answer[0]:
                return  # closes the idle kept-alive connection without a word

    async with LoopbackServer(handler) as server:
        transport = PooledTransport(ssl.create_default_context(), max_keepalive=4)
        url = f"http://127.0.0.1:{server.port}/chat"
        assert await _get(transport, url) == b"answer 1"
        assert await _get(transport, url) == b"answer 2"
        assert server.connections == 1
        close_after_answer[0] = True
        assert await _get(transport, url) == b"answer 3"
        await asyncio.sleep(0.05)  # the server's close reaches the pooled connection
        assert await _get(transport, url) == b"answer 4"
        assert server.connections == 2
        await transport.aclose()
    assert all(r.endswith(b'{"q": 1}') for r in requests)


async def test_tls_verifies_against_the_context_given(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls_pair

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(ok(b"secure answer"))
        await writer.drain()

    server = LoopbackServer(handler)
    server.ssl = server_context
    async with server:
        url = f"https://127.0.0.1:{server.port}/chat"
        trusting = PooledTransport(client_context)
        assert await _get(trusting, url) == b"secure answer"
        await trusting.aclose()
        strict = PooledTransport(ssl.create_default_context())  # the system's authorities
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await _get(strict, url)
        await strict.aclose()


async def streamed(chunks: list[bytes], gap: float) -> AsyncIterator[bytes]:
    for chunk in chunks:
        await asyncio.sleep(gap)
        yield chunk


async def test_a_chunked_answer_is_read_as_it_comes() -> None:
    parts = [b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        async for part in streamed(parts, 0.02):
            writer.write(b"%x\r\n%s\r\n" % (len(part), part))
            await writer.drain()
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    async with LoopbackServer(handler) as server:
        transport = PooledTransport(ssl.create_default_context())
        response = await transport.handle_async_request(
            httpx.Request("POST", f"http://127.0.0.1:{server.port}/", content=b"{}")
        )
        seen = [part async for part in response.aiter_raw()]
        await response.aclose()
        await transport.aclose()
    assert seen == parts


async def test_the_out_of_hands_hook_fires_on_connecting_and_once_the_request_is_written() -> None:
    seen: list[str] = []

    async def answer(_: bytes) -> bytes:
        seen.append("server has the request")
        return ok(b"answer")

    async with LoopbackServer(serving(answer)) as server:
        transport = PooledTransport(ssl.create_default_context())
        url = f"http://127.0.0.1:{server.port}/"
        with when_out_of_hands(lambda: seen.append("out of hands")):
            assert await _get(transport, url) == b"answer"  # a new connection first
            assert await _get(transport, url) == b"answer"  # the kept-alive one
        assert await _get(transport, url) == b"answer"  # no hook outside the block
        await transport.aclose()
    assert seen == [
        *("out of hands", "out of hands", "server has the request"),
        *("out of hands", "server has the request"),
        "server has the request",
    ]


async def test_a_connection_opened_ahead_is_the_one_the_first_request_uses(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    server_context, client_context = tls_pair
    events: list[str] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        events.append("handshake done")  # asyncio calls back after the TLS handshake
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            events.append("request")
            writer.write(ok(b"answer"))
            await writer.drain()

    server = LoopbackServer(handler)
    server.ssl = server_context
    async with server:
        backend = AsyncioBackend()
        url = httpx.URL(f"https://127.0.0.1:{server.port}/chat")
        contexts_built: list[str] = []

        def tls() -> ssl.SSLContext:
            contexts_built.append("tls")
            return client_context

        backend.open_ahead(url, tls, timeout=2)
        await asyncio.sleep(0.2)
        assert events == ["handshake done"] and contexts_built == ["tls"]
        transport = PooledTransport(client_context, backend=backend)
        assert await _get(transport, str(url)) == b"answer"
        assert await _get(transport, str(url)) == b"answer"
        await transport.aclose()
        await backend.close_ahead()
    assert events == ["handshake done", "request", "request"]
    assert server.connections == 1


async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await read_request(reader)
    writer.write(ok(b"answer"))
    await writer.drain()


async def test_a_request_waits_for_a_connection_still_opening_ahead() -> None:
    async with LoopbackServer(answer_once) as server:
        backend = AsyncioBackend()
        url = httpx.URL(f"http://127.0.0.1:{server.port}/chat")
        backend.open_ahead(url, ssl.create_default_context, timeout=2)
        transport = PooledTransport(ssl.create_default_context(), backend=backend)
        assert await _get(transport, str(url)) == b"answer"  # no await between the two
        await transport.aclose()
    assert server.connections == 1


async def test_an_ahead_connection_that_failed_or_was_closed_gives_way_to_a_fresh_one() -> None:
    closing = [True]

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not closing[0]:  # else the server drops the connection opened ahead at once
            await answer_once(reader, writer)

    async with LoopbackServer(handler) as server:
        backend = AsyncioBackend()
        url = httpx.URL(f"http://127.0.0.1:{server.port}/chat")
        backend.open_ahead(url, ssl.create_default_context, timeout=2)
        await asyncio.sleep(0.1)
        closing[0] = False
        transport = PooledTransport(ssl.create_default_context(), backend=backend)
        assert await _get(transport, str(url)) == b"answer"
        await transport.aclose()
    assert server.connections == 2

    async with LoopbackServer(lambda r, w: asyncio.sleep(0)) as server:
        port = server.port
    backend = AsyncioBackend()
    backend.open_ahead(httpx.URL(f"http://127.0.0.1:{port}/"), ssl.create_default_context)
    transport = PooledTransport(ssl.create_default_context(), backend=backend)
    with pytest.raises(httpx.ConnectError):  # refused ahead, then refused again: said once
        await _get(transport, f"http://127.0.0.1:{port}/")
    await transport.aclose()


def until_closed(ended: asyncio.Event) -> Handler:
    """A server side that reads until the client closes, then says so."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        ended.set()

    return handler


async def test_closing_ahead_closes_a_connection_nobody_took() -> None:
    ended = asyncio.Event()
    async with LoopbackServer(until_closed(ended)) as server:
        backend = AsyncioBackend()
        backend.open_ahead(
            httpx.URL(f"http://127.0.0.1:{server.port}/"), ssl.create_default_context
        )
        await asyncio.sleep(0.05)
        await backend.close_ahead()
        await asyncio.wait_for(ended.wait(), 2)


async def test_a_request_that_leaves_while_the_ahead_connection_opens_closes_it_once_open() -> None:
    ended = asyncio.Event()
    async with LoopbackServer(until_closed(ended)) as server:
        backend = AsyncioBackend()
        release = asyncio.Event()

        async def slow_open() -> AsyncioStream:
            await release.wait()  # the handshakes take their time
            return await open_stream(server.port)

        backend._ahead[("127.0.0.1", server.port)] = asyncio.ensure_future(slow_open())
        waiting = asyncio.ensure_future(backend.connect_tcp("127.0.0.1", server.port, timeout=2))
        await asyncio.sleep(0.05)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        release.set()
        await asyncio.wait_for(ended.wait(), 2)
