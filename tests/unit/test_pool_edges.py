"""The connection pool's edges (``glm_relay.http_pool``), against real loopback sockets: its
accounting under cancellation, errors and closing; fairness and the pool timeout; the write,
read and connect timeouts; framing that real servers, or hostile ones, send; a connection
opened ahead that does not fit."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from glm_relay.http1 import ChunkedBody, ProtocolError, parse_head
from glm_relay.http_pool import AsyncioBackend, PooledTransport
from tests.support.loopback import LoopbackServer, ok, read_request, serving

TIMEOUTS = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}


def request(port: int, method: str = "GET", *, timeouts: dict | None = None, **kw: object):
    return httpx.Request(
        method,
        f"http://127.0.0.1:{port}/x",
        extensions={"timeout": {**TIMEOUTS, **(timeouts or {})}},
        **kw,
    )


async def answer_ok(_: bytes) -> bytes:
    return ok(b"x")


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0.01)


async def test_a_request_waiting_for_the_pool_goes_before_one_that_comes_later() -> None:
    """When a connection is released, the request that waited for it takes it, even if another
    arrives in the very task step of the release; the latecomer queues behind."""
    order: list[str] = []
    async with LoopbackServer(serving(answer_ok)) as server:
        transport = PooledTransport(ssl.create_default_context(), max_connections=1)

        async def fetch(name: str) -> None:
            response = await transport.handle_async_request(request(server.port))
            order.append(name)
            await response.aread()

        held = await transport.handle_async_request(request(server.port))
        waiting = asyncio.ensure_future(fetch("waiting"))
        await settle()
        await held.aread()  # released: the waiting request's turn; in this same step ...
        await fetch("later")  # ... a new request asks
        await asyncio.wait_for(waiting, 1)
        assert order == ["waiting", "later"]
        assert server.connections == 1
        await transport.aclose()


async def test_the_pool_timeout_bounds_the_whole_wait() -> None:
    """A request woken for a turn that finds no room after all waits again only for what is
    left of its pool timeout, not for a fresh one."""
    async with LoopbackServer(serving(answer_ok)) as server:
        transport = PooledTransport(ssl.create_default_context(), max_connections=1)
        held = await transport.handle_async_request(request(server.port))
        loop = asyncio.get_running_loop()
        started = loop.time()
        waiting = asyncio.ensure_future(
            transport.handle_async_request(request(server.port, timeouts={"pool": 0.3}))
        )
        ended: list[float] = []
        waiting.add_done_callback(lambda _: ended.append(loop.time() - started))
        for _ in range(5):  # turns that bring no room: nothing was released
            await asyncio.sleep(0.1)
            transport._hand_on()
        with pytest.raises(httpx.PoolTimeout):
            await waiting
        assert ended[0] < 0.4
        await held.aclose()
        await transport.aclose()


async def test_a_streamed_request_body_is_sent_with_chunked_framing() -> None:
    """httpx gives a request whose content is an async iterator ``Transfer-Encoding: chunked``
    (and no Content-Length); its body must be framed so, or the server would read the JSON as
    a chunk size (an error, or worse, a smuggled request)."""
    received: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        try:
            body = await asyncio.wait_for(reader.read(65536), 0.3)
        except TimeoutError:
            body = b""
        received.append(head + body)
        writer.write(ok(b"x", close=True))
        await writer.drain()

    async def parts() -> AsyncIterator[bytes]:
        yield b'{"a":'
        yield b"1}"

    async with LoopbackServer(handler) as server:
        transport = PooledTransport(ssl.create_default_context())
        response = await transport.handle_async_request(
            request(server.port, "POST", content=parts())
        )
        await response.aread()
        await transport.aclose()
    head, _, body = received[0].partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head
    assert b"Content-Length" not in head
    decoder = ChunkedBody()
    assert decoder.feed(body) == b'{"a":1}'
    assert decoder.done


@pytest.mark.parametrize(
    "block",
    [
        b"HTTP/1.1 200 OK\r\nX-A: 1\rX-B: 2\r\nContent-Length: 3",
        b"HTTP/1.1 200 OK\r\nX-A: 1\x002\r\nContent-Length: 3",
    ],
)
def test_a_response_header_holding_cr_lf_or_nul_is_refused(block: bytes) -> None:
    """RFC 9110 5.5: a field value with CR, LF or NUL MUST be rejected (or those replaced by
    SP), as ``request_head`` refuses them on the way out."""
    with pytest.raises(ProtocolError):
        parse_head(block, method=b"GET")


def test_a_bare_lf_ends_a_header_line_as_h11_reads_it() -> None:
    """A lone LF is a line end (RFC 9112 2.2 allows it; h11, so httpx, takes it): the chunking
    it reveals frames the body, and with a Content-Length beside it the connection is not
    used again."""
    head = parse_head(
        b"HTTP/1.1 200 OK\r\nX-A: 1\nTransfer-Encoding: chunked\r\nContent-Length: 3",
        method=b"GET",
    )
    assert head.body.feed(b"2\r\nok\r\n0\r\n\r\n") == b"ok"
    assert not head.keep_alive


def test_a_transfer_encoding_list_with_an_empty_element_is_refused() -> None:
    """h11 accepts exactly ``chunked`` and nothing else; an empty element once had the body
    read until close with its chunk framing handed on as data."""
    with pytest.raises(ProtocolError):
        parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, ", method=b"GET")


async def test_an_ahead_connection_unfit_for_the_pool_is_closed_and_a_fresh_one_used(
    tls_pair: tuple[ssl.SSLContext, ssl.SSLContext],
) -> None:
    """A connection opened ahead with another TLS context than the pool's is closed, and the
    request goes on a fresh connection made with the pool's own."""
    server_context, client_context = tls_pair
    server = LoopbackServer(serving(answer_ok))
    server.ssl = server_context
    async with server:
        backend = AsyncioBackend()
        url = httpx.URL(f"https://127.0.0.1:{server.port}/x")
        backend.open_ahead(url, lambda: client_context, timeout=2)
        await asyncio.sleep(0.2)
        other = ssl.create_default_context()  # the pool's own context, trusting the same CA
        for der in client_context.get_ca_certs(binary_form=True):
            other.load_verify_locations(cadata=ssl.DER_cert_to_PEM_cert(der))
        transport = PooledTransport(other, backend=backend)
        response = await transport.handle_async_request(
            httpx.Request("GET", url, extensions={"timeout": TIMEOUTS})
        )
        assert await response.aread() == b"x"
        await settle()
        assert (server.connections, server.ended) == (2, 1)  # the one opened ahead, closed
        await transport.aclose()
        await backend.close_ahead()


@pytest.mark.parametrize("scheme", ["http", "https"])
async def test_a_body_the_server_does_not_take_is_a_write_timeout(
    scheme: str, tls_pair: tuple[ssl.SSLContext, ssl.SSLContext]
) -> None:
    """The held head and body leave in one ``writelines``; the wait for the writer relies on
    ``pause_writing`` having been called by then. It is not: over TLS the SSL transport takes the
    whole buffer into the TCP transport in one go (the app protocol is paused only on the SSL
    layer's own backlog), and on CPython < 3.12.9 / 3.13.2 the plain selector transport's
    ``writelines`` never pauses at all (gh-127655). The whole body is buffered in memory, the
    write timeout never applies, and the stall surfaces after the *read* timeout as ReadTimeout."""
    server_context, client_context = tls_pair

    async def never_reads(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(2)

    server = LoopbackServer(never_reads)
    if scheme == "https":
        server.ssl = server_context
    async with server:
        transport = PooledTransport(client_context)
        sent = httpx.Request(
            "POST",
            f"{scheme}://127.0.0.1:{server.port}/x",
            content=b"x" * (32 * 1024 * 1024),
            extensions={"timeout": {**TIMEOUTS, "write": 0.2, "read": 1.0}},
        )
        with pytest.raises(httpx.WriteTimeout):
            await transport.handle_async_request(sent)
        await transport.aclose()


async def test_closing_the_transport_fails_waiters_instead_of_opening_new_connections() -> None:
    """``aclose()`` leaves requests waiting for a pool slot waiting; when an in-flight response
    ends they open a fresh connection on the closed pool (and in-flight connections are left
    open, unlike httpx's own pool, which closes them all)."""
    async with LoopbackServer(serving(answer_ok)) as server:
        transport = PooledTransport(ssl.create_default_context(), max_connections=1)
        held = await transport.handle_async_request(request(server.port))
        waiter = asyncio.ensure_future(transport.handle_async_request(request(server.port)))
        await settle()
        await transport.aclose()
        await held.aread()  # the in-flight response ends: its slot goes to the waiter
        try:
            with pytest.raises(httpx.TransportError):
                response = await asyncio.wait_for(waiter, 1)
                await response.aclose()
        finally:
            assert server.connections == 1, "a connection was opened after aclose()"


async def test_cancelled_while_connecting_tls_frees_the_slot_and_closes_the_socket() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with LoopbackServer(silent) as server:
        transport = PooledTransport(ssl.create_default_context(), max_connections=1)
        url = f"https://127.0.0.1:{server.port}/x"
        task = asyncio.ensure_future(
            transport.handle_async_request(
                httpx.Request("GET", url, extensions={"timeout": TIMEOUTS})
            )
        )
        await settle()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport._open == 0
        await settle()
        assert server.ended == 1
        await transport.aclose()


async def test_a_tls_handshake_that_never_ends_is_a_connect_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with LoopbackServer(silent) as server:
        transport = PooledTransport(ssl.create_default_context())
        url = f"https://127.0.0.1:{server.port}/x"
        with pytest.raises(httpx.ConnectTimeout):
            await transport.handle_async_request(
                httpx.Request("GET", url, extensions={"timeout": {**TIMEOUTS, "connect": 0.1}})
            )
        assert transport._open == 0
        await transport.aclose()


async def test_cancelled_waiters_and_a_woken_then_cancelled_waiter_keep_the_count() -> None:
    async with LoopbackServer(serving(answer_ok)) as server:
        transport = PooledTransport(ssl.create_default_context(), max_connections=1)
        held = await transport.handle_async_request(request(server.port))
        first = asyncio.ensure_future(transport.handle_async_request(request(server.port)))
        second = asyncio.ensure_future(transport.handle_async_request(request(server.port)))
        third = asyncio.ensure_future(transport.handle_async_request(request(server.port)))
        await settle()
        third.cancel()  # cancelled while waiting
        await held.aread()  # wakes `first` ...
        first.cancel()  # ... which leaves before it runs: the turn must pass to `second`
        response = await asyncio.wait_for(second, 1)
        assert await response.aread() == b"x"
        assert transport._open == 1 and not transport._waiting
        await asyncio.gather(first, third, return_exceptions=True)
        await transport.aclose()
        assert transport._open == 0


async def test_cancelled_while_waiting_for_the_head_closes_the_connection() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()

    async with LoopbackServer(silent) as server:
        transport = PooledTransport(ssl.create_default_context())
        task = asyncio.ensure_future(transport.handle_async_request(request(server.port)))
        await settle()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport._open == 0 and not transport._idle
        await settle()
        assert server.ended == 1
        await transport.aclose()


async def test_a_body_cancelled_mid_read_or_never_read_is_closed_on_aclose() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            try:
                await read_request(reader)
            except asyncio.IncompleteReadError:
                return
            writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n")
            await writer.drain()

    async with LoopbackServer(slow) as server:
        transport = PooledTransport(ssl.create_default_context())
        response = await transport.handle_async_request(request(server.port))

        async def drain() -> None:
            async for _ in response.aiter_raw():
                pass

        task = asyncio.ensure_future(drain())
        await settle()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert transport._open == 1
        await response.aclose()
        assert transport._open == 0 and not transport._idle

        never_read = await transport.handle_async_request(request(server.port))
        await never_read.aclose()
        assert transport._open == 0 and not transport._idle
        await settle()
        assert server.ended == 2
        await transport.aclose()


async def test_a_read_timeout_mid_body_is_read_timeout_and_frees_the_slot() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
        await writer.drain()
        await reader.read()

    async with LoopbackServer(stalls) as server:
        transport = PooledTransport(ssl.create_default_context())
        response = await transport.handle_async_request(
            request(server.port, timeouts={"read": 0.1})
        )
        with pytest.raises(httpx.ReadTimeout):
            await response.aread()
        assert transport._open == 0
        await transport.aclose()


async def test_the_last_chunk_is_given_before_the_end_of_the_body_arrives() -> None:
    go_on = asyncio.Event()

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc")
        await writer.drain()
        await go_on.wait()
        writer.write(b"\r\n0\r\n\r\n")
        await writer.drain()
        await reader.read()

    async with LoopbackServer(handler) as server:
        transport = PooledTransport(ssl.create_default_context())
        response = await transport.handle_async_request(request(server.port))
        parts = response.aiter_raw()
        assert await asyncio.wait_for(parts.__anext__(), 1) == b"abc"
        go_on.set()
        assert [part async for part in parts] == []
        assert transport._open == 1 and len(transport._idle) == 1
        await transport.aclose()


async def test_head_204_304_and_1xx_leave_the_connection_reusable() -> None:
    answers = iter(
        [
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",  # to HEAD
            b"HTTP/1.1 204 No Content\r\n\r\n",
            b"HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n"
            + ok(b"done"),
        ]
    )

    async def answer(_: bytes) -> bytes:
        return next(answers)

    async with LoopbackServer(serving(answer)) as server:
        transport = PooledTransport(ssl.create_default_context())
        for method in ["HEAD", "GET", "GET", "GET"]:
            response = await transport.handle_async_request(request(server.port, method))
            body = await response.aread()
        assert response.status_code == 200 and body == b"done"
        assert server.connections == 1
        await transport.aclose()
