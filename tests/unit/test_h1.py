"""HTTP/1.1 framing of the container's connection pool (``glm_relay.http_pool.h1``): what a
request looks like on the wire, and how each kind of response body is read, whole or in pieces."""

from __future__ import annotations

import pytest

from glm_relay.http_pool.h1 import (
    ChunkedBody,
    LengthBody,
    ProtocolError,
    UntilCloseBody,
    parse_head,
    request_head,
)


def test_a_request_head_is_the_start_line_and_the_headers_then_an_empty_line() -> None:
    head = request_head(
        b"POST", b"/api/chat?x=1", [(b"Host", b"example.test"), (b"Content-Length", b"2")]
    )
    assert head == (
        b"POST /api/chat?x=1 HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\n"
    )


@pytest.mark.parametrize("value", [b"a\r\nX-Injected: 1", b"a\nb", b"a\x00b"])
def test_a_header_that_would_break_the_line_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError, match="line break or NUL"):
        request_head(b"GET", b"/", [(b"Authorization", value)])


def test_a_chunked_head_keeps_its_headers_as_sent() -> None:
    head = parse_head(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n"
        b"X-Log-Id:  abc \r\nX-Log-Id: def",
        method=b"POST",
    )
    assert (head.status, head.reason, head.keep_alive) == (200, b"OK", True)
    assert head.headers == [
        (b"Content-Type", b"text/event-stream"),
        (b"Transfer-Encoding", b"chunked"),
        (b"X-Log-Id", b"abc"),
        (b"X-Log-Id", b"def"),
    ]
    assert isinstance(head.body, ChunkedBody)


@pytest.mark.parametrize(
    ("block", "method", "kind", "keep_alive"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5", b"GET", LengthBody, True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5", b"GET", LengthBody, True),
        (
            b"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, Close\r\nContent-Length: 5",
            b"GET",
            LengthBody,
            False,
        ),
        (b"HTTP/1.0 200 OK\r\nContent-Length: 5", b"GET", LengthBody, False),
        (b"HTTP/1.1 200 OK", b"GET", UntilCloseBody, False),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip", b"GET", UntilCloseBody, False),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9",
            b"GET",
            ChunkedBody,
            False,
        ),
        (b"HTTP/1.1 204 No Content", b"DELETE", LengthBody, True),
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 90", b"GET", LengthBody, True),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 90", b"HEAD", LengthBody, True),
        (b"HTTP/1.1 100 Continue", b"POST", LengthBody, True),
    ],
)
def test_the_head_says_how_the_body_is_framed_and_whether_the_connection_stays(
    block: bytes, method: bytes, kind: type, keep_alive: bool
) -> None:
    head = parse_head(block, method=method)
    assert type(head.body) is kind
    assert head.keep_alive is keep_alive


def test_bodies_that_cannot_have_content_are_empty_whatever_their_length_says() -> None:
    for block, method in [
        (b"HTTP/1.1 304 Not Modified\r\nContent-Length: 90", b"GET"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 90", b"HEAD"),
    ]:
        assert parse_head(block, method=method).body.done


@pytest.mark.parametrize(
    "block",
    [
        b"HTTP/2 200 OK",
        b"ICY 200 OK",
        b"HTTP/1.1 2000 OK",
        b"HTTP/1.1 OK",
        b"HTTP/1.1 200 OK\r\nno colon here",
        b"HTTP/1.1 200 OK\r\n: empty name",
        b"HTTP/1.1 200 OK\r\nName : space before the colon",
        b"HTTP/1.1 200 OK\r\nX-A: 1\r\n folded: continuation",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0x10",
    ],
)
def test_a_head_that_breaks_the_framing_is_a_protocol_error(block: bytes) -> None:
    with pytest.raises(ProtocolError):
        parse_head(block, method=b"GET")


CHUNKED = b"5\r\nhello\r\n7;name=value\r\n, world\r\n0\r\nX-Trailer: 1\r\n\r\n"


def test_a_chunked_body_read_whole_gives_its_data_and_ends() -> None:
    body = ChunkedBody()
    assert body.feed(CHUNKED) == b"hello, world"
    assert body.done
    body.end()  # a complete body may be followed by the server closing


def test_a_chunked_body_fed_one_byte_at_a_time_gives_the_same_data() -> None:
    body = ChunkedBody()
    out = b"".join(body.feed(CHUNKED[at : at + 1]) for at in range(len(CHUNKED)))
    assert out == b"hello, world"
    assert body.done


def test_a_chunk_split_across_reads_is_given_as_it_comes() -> None:
    body = ChunkedBody()
    assert body.feed(b"a\r\n01234") == b"01234"
    assert body.feed(b"56789\r") == b"56789"
    assert body.feed(b"\n0\r\n") == b""
    assert not body.done
    assert body.feed(b"\r\n") == b""
    assert body.done


@pytest.mark.parametrize(
    ("wire", "message"),
    [
        (b"zz\r\nhello\r\n", "hexadecimal"),
        (b"\r\n", "hexadecimal"),
        (b"5\r\nhello!!\r\n", "ran past its size"),
        (b"0\r\n\r\nextra", "after the chunked body ended"),
        (b"1" * 5000, "too long"),
    ],
)
def test_a_broken_chunked_body_is_a_protocol_error(wire: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        ChunkedBody().feed(wire)


def test_a_chunked_body_cut_short_is_a_protocol_error_when_the_server_closes() -> None:
    body = ChunkedBody()
    body.feed(b"5\r\nhel")
    with pytest.raises(ProtocolError, match="before the body ended"):
        body.end()


def test_a_length_body_ends_at_its_length_and_refuses_more() -> None:
    body = LengthBody(5)
    assert body.feed(b"hel") == b"hel"
    assert not body.done
    assert body.feed(b"lo") == b"lo"
    assert body.done
    with pytest.raises(ProtocolError, match="more than its Content-Length"):
        LengthBody(2).feed(b"abc")
    short = LengthBody(5)
    short.feed(b"abc")
    with pytest.raises(ProtocolError):
        short.end()


def test_a_body_without_a_length_ends_when_the_server_closes() -> None:
    body = UntilCloseBody()
    assert body.feed(b"anything") == b"anything"
    assert not body.done
    body.end()
    assert body.done
