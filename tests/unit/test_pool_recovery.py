"""How the connection pool (``glm_relay.http_pool``) comes through a server that ends a
connection under a request: an answer sent before the request body was taken is returned, a
reused connection closed under a request is replaced once, and idle connections are let go
before the servers behind the relay (DynamoDB above all) close them."""

from __future__ import annotations

import asyncio
import ssl
import time

import httpx
import pytest

from glm_relay.chat.request import ChatRequest
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.http_pool import PooledTransport
from glm_relay.state.dynamo_client import DynamoClient
from glm_relay.upstream import CredentialStore, ZhipuClient
from tests.support.loopback import LoopbackServer, ok, read_request

TIMEOUTS = {"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0}
TOO_LARGE = (
    b"HTTP/1.1 413 Request Entity Too Large\r\nContent-Type: application/json\r\n"
    b'Content-Length: 27\r\nConnection: close\r\n\r\n{"error":{"code":"1210"}}\r\n'
)


def request(port: int, method: str = "GET", **kwargs: object) -> httpx.Request:
    return httpx.Request(
        method, f"http://127.0.0.1:{port}/x", extensions={"timeout": TIMEOUTS}, **kwargs
    )


async def refuse_large_bodies(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """What a server in front of Zhipu does with a body over its limit: it answers 413 from the
    head alone, half-closes, and throws the body away after that. Until then the client's
    writes have filled the socket buffers and wait."""
    await reader.readuntil(b"\r\n\r\n")
    await asyncio.sleep(0.1)
    writer.write(TOO_LARGE)
    await writer.drain()
    writer.write_eof()
    while await reader.read(65536):
        pass


async def test_a_large_upload_refused_by_zhipu_is_its_own_4xx_sent_once() -> None:
    """Through the Zhipu client as a vision request uses it: the upstream's 413 is mapped to
    ``upstream_rejected_request`` after one request, where the lost answer used to be a
    broken connection, retried, and ended as a 502."""
    requests: list[int] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(1)
        await refuse_large_bodies(reader, writer)

    image = "data:image/png;base64," + "A" * 16 * 1024 * 1024
    chat = ChatRequest(
        model="glm-4.6v",
        messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": image}}]}
        ],
        max_tokens=64,
    )
    async with LoopbackServer(upstream) as server:
        client = ZhipuClient(
            Settings.from_env({}, zhipu_base_url=f"http://127.0.0.1:{server.port}/v4"),
            CredentialStore(StaticSource("key-id.key-secret"), mode="raw"),
            transport=PooledTransport(ssl.create_default_context()),
            sleep=lambda _: asyncio.sleep(0),
        )
        with pytest.raises(RelayError) as refused:
            await client.open_stream(chat, request_id="r-1", deadline=time.monotonic() + 30)
        await client.aclose()
    assert refused.value.code is ErrorCode.UPSTREAM_REJECTED_REQUEST
    assert requests == [1]


class StaticSource:
    def __init__(self, value: str) -> None:
        self.value = value

    async def fetch(self, *, force: bool = False) -> str:
        return self.value


@pytest.mark.parametrize("size", [70 * 1024, 16 * 1024 * 1024])
async def test_an_answer_sent_before_a_large_body_was_taken_is_returned(size: int) -> None:
    """The 413 arrives while the body (over the 64 KB a request holds back) is still going
    out; the server's half-close stops the writing, and the caller gets the server's own
    answer, as httpcore gives it, not a write error."""
    async with LoopbackServer(refuse_large_bodies) as server:
        transport = PooledTransport(ssl.create_default_context())
        response = await transport.handle_async_request(
            request(server.port, "POST", content=b"x" * size)
        )
        assert response.status_code == 413
        assert await response.aread() == b'{"error":{"code":"1210"}}\r\n'
        await transport.aclose()
    assert server.connections == 1


async def test_a_server_that_closes_under_a_large_body_without_answering_is_a_write_error() -> None:
    async def close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await asyncio.sleep(0.1)
        writer.write_eof()
        while await reader.read(65536):
            pass

    async with LoopbackServer(close_at_once) as server:
        transport = PooledTransport(ssl.create_default_context())
        with pytest.raises(httpx.WriteError):
            await transport.handle_async_request(
                request(server.port, "POST", content=b"x" * 16 * 1024 * 1024)
            )
        await transport.aclose()


def closing_second_requests(answered: list[int]) -> object:
    """A server side that answers the first request on each connection and closes the
    connection, unanswered, when a second request arrives on it (an idle close racing it)."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        answered.append(1)
        writer.write(ok(b"first"))
        await writer.drain()
        try:
            await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.transport.abort()  # a reset, with the request read and no byte of an answer

    return handler


async def test_a_reused_connection_closed_under_a_request_is_replaced_once() -> None:
    """The request goes again, once, on a new connection: it failed before any byte of an
    answer, on a connection that had served before, and its body is at hand to send again."""
    answered: list[int] = []
    async with LoopbackServer(closing_second_requests(answered)) as server:
        transport = PooledTransport(ssl.create_default_context())
        first = await transport.handle_async_request(request(server.port))
        await first.aread()
        second = await transport.handle_async_request(
            request(server.port, "POST", content=b'{"Key":{}}')
        )
        assert second.status_code == 200
        assert await second.aread() == b"first"
        await transport.aclose()
    assert server.connections == 2
    assert len(answered) == 2


async def test_a_request_that_fails_on_a_new_connection_is_not_sent_again() -> None:
    """A new connection that breaks is the server's answer: no second try."""

    async def reset(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.transport.abort()

    async with LoopbackServer(reset) as server:
        transport = PooledTransport(ssl.create_default_context())
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await transport.handle_async_request(request(server.port))
        await transport.aclose()
    assert server.connections == 1


async def test_a_reused_connection_that_broke_after_the_answer_began_is_not_retried() -> None:
    """Once a byte of the answer arrived, the server acted on the request: it is not sent
    again, whatever the connection."""
    requests: list[int] = []

    async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        requests.append(1)
        writer.write(ok(b"first"))
        await writer.drain()
        await read_request(reader)
        requests.append(2)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-")
        await writer.drain()
        writer.transport.abort()

    async with LoopbackServer(half_answer) as server:
        transport = PooledTransport(ssl.create_default_context())
        await (await transport.handle_async_request(request(server.port))).aread()
        with pytest.raises((httpx.ReadError, httpx.RemoteProtocolError)):
            await transport.handle_async_request(request(server.port))
        await transport.aclose()
    assert requests == [1, 2]
    assert server.connections == 1


async def test_idle_connections_are_let_go_well_before_dynamodb_closes_them() -> None:
    """The pool's default keep-alive (the DynamoDB client's pool uses it) is under half of the
    60 s after which DynamoDB's front end closes an idle connection: a connection idle for
    30 s is not offered to a request, which opens a new one."""
    now = [0.0]
    async with LoopbackServer(closing_second_requests([])) as server:
        transport = PooledTransport(ssl.create_default_context(), clock=lambda: now[0])
        await (await transport.handle_async_request(request(server.port))).aread()
        now[0] += 30.0
        await (await transport.handle_async_request(request(server.port))).aread()
        await transport.aclose()
    assert server.connections == 2


async def test_dynamodb_calls_on_a_connection_closed_under_them_still_succeed() -> None:
    """Through the DynamoDB client as the stores use it: the second call meets its kept
    connection closed by the server (what DynamoDB does to an idle one) and still gets its
    item, where it used to end in ``DynamoUnavailable`` (a ``state_unavailable`` on a healthy
    table)."""
    answered: list[int] = []

    async def dynamodb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        answered.append(1)
        item = b'{"Item":{"pk":{"S":"a"}}}'
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.0\r\n"
            b"Content-Length: %d\r\n\r\n%s" % (len(item), item)
        )
        await writer.drain()
        try:
            await read_request(reader)
        except asyncio.IncompleteReadError:
            return
        writer.transport.abort()

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    async with LoopbackServer(dynamodb) as server:
        client = DynamoClient(
            env=env, region="eu-west-1", endpoint=f"http://127.0.0.1:{server.port}"
        )
        key = {"TableName": "t", "Key": {"pk": {"S": "a"}}}
        assert await client.post("GetItem", key) == {"Item": {"pk": {"S": "a"}}}
        assert await client.post("GetItem", key) == {"Item": {"pk": {"S": "a"}}}
        await client.aclose()
    assert (server.connections, len(answered)) == (2, 2)
