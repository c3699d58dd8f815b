"""The Runtime API client against answers it cannot use: each is a ``MalformedAnswer`` (fatal,
so the runtime loop logs it and exits) rather than a ``KeyError`` or ``ValueError`` escaping."""

from __future__ import annotations

import asyncio

import pytest

from glm_relay.runtime.api import MalformedAnswer, RuntimeAPIClient


async def next_answered_with(answer: bytes) -> MalformedAnswer:
    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(answer)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    address = f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    client = RuntimeAPIClient(address)
    try:
        with pytest.raises(MalformedAnswer) as raised:
            await asyncio.wait_for(client.next_invocation(), 10)
    finally:
        await client.close()
        server.close()
    assert raised.value.fatal
    return raised.value


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}", "no lambda-runtime-aws-request-id"),
        (
            b"HTTP/1.1 200 OK\r\nLambda-Runtime-Aws-Request-Id: r-1\r\n"
            b"Lambda-Runtime-Deadline-Ms: soon\r\nContent-Length: 2\r\n\r\n{}",
            "lambda-runtime-deadline-ms is not a number",
        ),
        (b"HTTP/1.1 200 OK\r\nContent-Length: many\r\n\r\n{}", "Content-Length"),
    ],
    ids=["no-request-id", "bad-deadline", "bad-framing"],
)
async def test_an_unusable_next_answer_is_a_fatal_malformed_answer(
    answer: bytes, reason: str
) -> None:
    error = await next_answered_with(answer)

    assert str(error).startswith("GET /2018-06-01/runtime/invocation/next: the answer is malformed")
    assert reason in str(error)
