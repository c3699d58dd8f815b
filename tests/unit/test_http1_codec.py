"""The package's HTTP/1.1 codec (``glm_relay.http1``): what a request looks like on the wire,
and how each kind of response head and body is read, whole or in pieces. (Its agreement with
h11 on generated responses is ``test_http1_differential.py``.)"""

from __future__ import annotations

import pytest

from glm_relay.http1 import (
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
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: Chunked\r\nContent-Length: 9",
            b"GET",
            ChunkedBody,
            False,
        ),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked", b"GET", ChunkedBody, True),
        (b"HTTP/1.2 200 OK\r\nContent-Length: 5", b"GET", LengthBody, True),
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
        b"HTTP/1.1 200 OK\r\n folded: continuation first",
        b"HTTP/1.1 099 Too Low",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
        b"HTTP/1.1 200 OK\r\nContent-Length: 123456789012345678901",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6",
        b"HTTP/1.1 200 OK\r\nContent-Length: -5",
        b"HTTP/1.1 200 OK\r\nContent-Length: 0x10",
    ],
)
def test_a_head_that_breaks_the_framing_is_a_protocol_error(block: bytes) -> None:
    """Among them every Transfer-Encoding but exactly ``chunked``, as h11 (so httpcore) refuses
    them: a coding the relay cannot undo would hand it bytes that are not the body."""
    with pytest.raises(ProtocolError):
        parse_head(block, method=b"GET")


def test_folded_lines_are_unfolded_and_a_bare_lf_ends_a_line() -> None:
    """RFC 9112 5.2 and 2.2, as h11 reads them: a continuation line joins the one before with
    a space, and a lone LF ends a line as CRLF does."""
    head = parse_head(b"HTTP/1.1 200 OK\nX-A: one \r\n\t two\nContent-Length: 0", method=b"GET")
    assert head.headers == [(b"X-A", b"one  two"), (b"Content-Length", b"0")]


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
        (b"5\r\nhello\n\n", "ran past its size"),
        (b"5 ;x\r\nhello\r\n", "hexadecimal"),
        (b"0\r\nX Y: 1\r\n\r\n", "malformed header line"),
        (b"1" * 5000, "too long"),
    ],
)
def test_a_broken_chunked_body_is_a_protocol_error(wire: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        ChunkedBody().feed(wire)


def test_bytes_after_a_body_are_kept_apart_not_an_error() -> None:
    """The response is whole; what follows is no part of it, and the connection it came on is
    not used again (h11 leaves such bytes as trailing data)."""
    body = ChunkedBody()
    assert body.feed(b"2\r\nok\r\n0\r\nX-T: 1\r\n\r\nextra") == b"ok"
    assert (body.done, body.trailing, body.trailers) == (True, b"extra", [(b"X-T", b"1")])
    assert body.feed(b"more") == b""
    assert body.trailing == b"extramore"
    length = LengthBody(2)
    assert length.feed(b"abc") == b"ab"
    assert (length.done, length.trailing) == (True, b"c")


def test_a_chunked_body_cut_short_is_a_protocol_error_when_the_server_closes() -> None:
    body = ChunkedBody()
    body.feed(b"5\r\nhel")
    with pytest.raises(ProtocolError, match="before the body ended"):
        body.end()


def test_a_length_body_ends_at_its_length() -> None:
    body = LengthBody(5)
    assert body.feed(b"hel") == b"hel"
    assert not body.done
    assert body.feed(b"lo") == b"lo"
    assert body.done
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
