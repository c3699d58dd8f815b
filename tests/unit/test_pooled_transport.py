"""The container's httpx transport (``glm_relay.http_pool.PooledTransport``) against hand-written
loopback servers: the bytes a server receives, a streamed body arriving piece by piece, which
connections are kept and which are not, the pool's limits, and broken answers as httpx's errors."""

from __future__ import annotations

import asyncio
import ssl

import httpx
import pytest

from glm_relay.http_pool import PooledTransport
from tests.support.loopback import LoopbackServer, ok, read_request, serving

TIMEOUTS = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 0.2}


def request(port: int, method: str = "GET", **kwargs: object) -> httpx.Request:
    return httpx.Request(
        method, f"http://127.0.0.1:{port}/v1/x?q=1", extensions={"timeout": TIMEOUTS}, **kwargs
    )


async def body_of(transport: httpx.AsyncBaseTransport, port: int) -> bytes:
    response = await transport.handle_async_request(request(port))
    try:
        return b"".join([part async for part in response.aiter_raw()])
    finally:
        await response.aclose()


def replying(*answers: bytes) -> object:
    """A server side that answers each request in turn with the next of ``answers``."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for answer in answers:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(answer)
            await writer.drain()

    return handler


async def test_the_server_receives_the_head_and_body_httpx_built_in_one_piece() -> None:
    arrived: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        arrived.append(await reader.read(65536))
        writer.write(ok(b"{}"))
        await writer.drain()

    async with LoopbackServer(handler) as server:
        port = server.port
        transport = PooledTransport(ssl.create_default_context())
        sent = request(
            server.port, "POST", content=b'{"a":1}', headers={"Authorization": "Bearer t"}
        )
        response = await transport.handle_async_request(sent)
        assert response.status_code == 200
        assert await response.aread() == b"{}"
        await transport.aclose()
    assert arrived == [
        b"POST /v1/x?q=1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer t\r\n"
        b"Content-Length: 7\r\n\r\n"
        b'{"a":1}' % port
    ]


async def test_a_chunked_answer_arrives_piece_by_piece_as_the_server_sends_it() -> None:
    go_on = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Id: 7\r\n\r\n6\r\nfirst\n\r\n"
        )
        await writer.drain()
        await go_on.wait()  # the second piece only once the client holds the first
        writer.write(b"7\r\nsecond\n\r\n0\r\n\r\n")
        await writer.drain()

    async with LoopbackServer(handler) as server:
        transport = PooledTransport(ssl.create_default_context())
        response = await transport.handle_async_request(request(server.port))
        assert (response.status_code, response.headers["x-id"]) == (200, "7")
        assert response.extensions["reason_phrase"] == b"OK"
        pieces = response.aiter_raw()
        assert await anext(pieces) == b"first\n"
        go_on.set()
        assert [part async for part in pieces] == [b"second\n"]
        await response.aclose()
        await transport.aclose()


async def test_an_interim_100_continue_is_passed_over() -> None:
    answer = b"HTTP/1.1 100 Continue\r\n\r\n" + ok(b"final")
    async with LoopbackServer(replying(answer)) as server:
        transport = PooledTransport(ssl.create_default_context())
        assert await body_of(transport, server.port) == b"final"
        await transport.aclose()


async def test_a_connection_is_kept_only_once_its_body_was_read_to_the_end() -> None:
    async with LoopbackServer(replying(*[ok(b"0123456789")] * 4)) as server:
        transport = PooledTransport(ssl.create_default_context())
        assert await body_of(transport, server.port) == b"0123456789"
        assert await body_of(transport, server.port) == b"0123456789"
        assert server.connections == 1
        unread = await transport.handle_async_request(request(server.port))
        await unread.aclose()  # left unread: that connection cannot carry another request
        assert await body_of(transport, server.port) == b"0123456789"
        assert server.connections == 2
        await transport.aclose()


@pytest.mark.parametrize(
    "answer",
    [
        ok(b"bye", close=True),
        b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nbye",
    ],
)
async def test_a_connection_the_server_will_close_is_not_kept(answer: bytes) -> None:
    async with LoopbackServer(replying(answer, answer)) as server:
        transport = PooledTransport(ssl.create_default_context())
        assert await body_of(transport, server.port) == b"bye"
        assert await body_of(transport, server.port) == b"bye"
        assert server.connections == 2  # kept, the second would have gone on the first
        await transport.aclose()


async def test_a_body_without_a_length_is_read_until_the_server_closes() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\n\r\nall of ")
        await writer.drain()
        writer.write(b"it")
        writer.close()

    async with LoopbackServer(handler) as server:
        transport = PooledTransport(ssl.create_default_context())
        assert await body_of(transport, server.port) == b"all of it"
        await transport.aclose()


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "without a response"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "status line"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", "before the body ended"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", "before the body ended"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", "hexadecimal"),
    ],
)
async def test_a_broken_answer_is_a_remote_protocol_error(answer: bytes, message: str) -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(answer)
        await writer.drain()
        writer.close()

    async with LoopbackServer(handler) as server:
        transport = PooledTransport(ssl.create_default_context())
        with pytest.raises(httpx.RemoteProtocolError, match=message) as caught:
            await body_of(transport, server.port)
        assert caught.value.request.url.port == server.port
        await transport.aclose()


async def test_a_full_pool_makes_a_request_wait_for_a_connection_then_time_out() -> None:
    release = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nsl")
            await writer.drain()
            await release.wait()
            writer.write(b"ow")
            await writer.drain()

    async with LoopbackServer(handler) as server:
        transport = PooledTransport(ssl.create_default_context(), max_connections=1)
        first = await transport.handle_async_request(request(server.port))
        with pytest.raises(httpx.PoolTimeout):
            await transport.handle_async_request(request(server.port))  # 0.2 s pool timeout
        waiting = asyncio.ensure_future(body_of(transport, server.port))
        await asyncio.sleep(0.05)
        assert not waiting.done()
        release.set()
        assert await first.aread() == b"slow"
        assert await asyncio.wait_for(waiting, 2) == b"slow"  # on the connection freed
        assert server.connections == 1
        await transport.aclose()


async def test_idle_connections_expire_and_only_so_many_are_kept() -> None:
    now = [0.0]
    async with LoopbackServer(replying(*[ok(b"x")] * 9)) as server:
        transport = PooledTransport(
            ssl.create_default_context(), keepalive_expiry=30, clock=lambda: now[0]
        )
        await body_of(transport, server.port)
        now[0] = 29.0
        await body_of(transport, server.port)
        assert server.connections == 1
        now[0] = 60.0  # idle since 29 s: expired
        await body_of(transport, server.port)
        assert server.connections == 2
        await transport.aclose()

    async with LoopbackServer(replying(*[ok(b"x")] * 2)) as server:
        transport = PooledTransport(ssl.create_default_context(), max_keepalive=1)
        responses = [await transport.handle_async_request(request(server.port)) for _ in "ab"]
        for response in responses:
            await response.aread()
        assert server.connections == 2
        await asyncio.sleep(0.05)
        assert server.ended == 1  # only one idle connection is kept: the older one is closed
        assert await asyncio.wait_for(body_of(transport, server.port), 1) == b"x"
        assert server.connections == 2  # the one kept is reused
        await transport.aclose()


@pytest.mark.parametrize(
    "answer_with_extra",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc",  # one byte too many
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n0\r\n\r\nc",
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nab\r\n",  # a stray line end
    ],
)
async def test_bytes_after_an_answer_leave_it_whole_and_its_connection_unused(
    answer_with_extra: bytes,
) -> None:
    """The answer is what its framing says (as httpcore gives it); the stray bytes are no part
    of it, and the connection they came on does not carry another request."""
    answers = iter([answer_with_extra, ok(b"fine")])  # in turn, whichever connection asks

    async def answer(_: bytes) -> bytes:
        return next(answers)

    async with LoopbackServer(serving(answer)) as server:
        transport = PooledTransport(ssl.create_default_context())
        assert await body_of(transport, server.port) == b"ab"
        assert await body_of(transport, server.port) == b"fine"
        assert server.connections == 2  # the server would have answered on the first one too
        await transport.aclose()


async def test_only_http_and_https_are_spoken_and_headers_cannot_smuggle_lines() -> None:
    transport = PooledTransport(ssl.create_default_context())
    with pytest.raises(httpx.UnsupportedProtocol):
        await transport.handle_async_request(httpx.Request("GET", "ftp://127.0.0.1/file"))
    smuggling = httpx.Request("GET", "http://127.0.0.1:9/", headers={"X-A": "1\r\nX-B: 2"})
    with pytest.raises(httpx.LocalProtocolError, match="line break"):
        await transport.handle_async_request(smuggling)  # before any connection (port 9)


async def test_a_transfer_coding_other_than_chunked_is_a_protocol_error() -> None:
    """``gzip, chunked`` would hand the caller gzip bytes as the body; h11 (so httpcore)
    refuses it, and so does the pool."""
    coded = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nab\r\n0\r\n\r\n"
    async with LoopbackServer(serving(lambda _: asyncio.sleep(0, coded))) as server:
        transport = PooledTransport(ssl.create_default_context())
        with pytest.raises(httpx.RemoteProtocolError, match="not just chunked"):
            await body_of(transport, server.port)
        await transport.aclose()
