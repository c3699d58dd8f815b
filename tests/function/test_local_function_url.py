"""The local function URL refuses broken HTTP the way a function URL would: before the function."""

from __future__ import annotations

import socket

import pytest

from devtools.stack import DevStack

pytestmark = pytest.mark.usefixtures("upstream_log")


def exchange(stack: DevStack, raw: bytes) -> bytes:
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(raw)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


@pytest.mark.parametrize(
    ("size_line", "status"),
    [(b"zz", b"400"), (b"-5", b"400"), (b"7000000", b"413")],
    ids=["not-hex", "negative", "over-6-MB"],
)
def test_a_broken_chunked_body_gets_a_4xx_and_never_reaches_the_function(
    stack, client, size_line, status
) -> None:
    request = (
        b"POST /chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n" + size_line + b"\r\n{}\r\n0\r\n\r\n"
    )

    answer = exchange(stack, request)

    assert answer.split(b" ", 2)[1] == status
    assert stack.upstream is not None
    assert client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"] == []
