"""The package's HTTP/1.1 codec (``glm_relay.http1``) against h11, the parser under httpx's own
transport: generated responses (Content-Length, chunked or until-close framing; chunk sizes and
extensions; trailers; interim answers; folded lines and bare LF line ends; stray bytes after the
body; a bad byte somewhere; a close anywhere), split into pieces anywhere, go through both. The
outcomes must agree: the same status, reason, headers, body, trailers and whether the
connection may carry another request, or both refuse.

Where the codec differs on purpose, ``PURPOSEFUL`` names the case, and a test of its own shows
it. The seed is fixed and the examples bounded: a few seconds in CI.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import h11
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from glm_relay.http1 import MAX_HEAD_BYTES, HeadReader, ProtocolError
from glm_relay.http1.whole import read_response

Outcome = tuple[object, ...]
REFUSED: Outcome = ("refused",)
BAD_BYTES = [b"\x00", b"\r", b"\n", b" ", b"\t", b":", b"\x0b", b"\x7f", b"\xff", b"g", b";", b"0"]
NAMES = [b"Content-Type", b"X-Log-Id", b"Server", b"Set-Cookie", b"x-a", b"Vary", b"Trailer"]
VALUE_BYTES = list(b"abcXYZ019 \t;,=/\x01\x7f\xe4")


# -- the two readers ---------------------------------------------------------------------------


def _lengths_as_h11_gives_them(items: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """h11 hands on Content-Length as the one number and Transfer-Encoding lowercased; the codec
    keeps every value as sent. Compared after the same rewriting."""
    out = []
    for name, value in items:
        lowered = name.lower()
        if lowered == b"content-length":
            value = value.split(b",")[0].strip()
        elif lowered == b"transfer-encoding":
            value = value.lower()
        out.append((lowered, value))
    return out


def codec(method: bytes, pieces: list[bytes]) -> Outcome:
    """What the pool makes of ``pieces`` followed by the server's close."""
    heads = HeadReader(method)
    found = None
    body = None
    data: list[bytes] = []
    try:
        for piece in pieces:
            if body is not None:
                data.append(body.feed(piece))  # past the end: kept apart as trailing bytes
                continue
            found = heads.feed(piece)
            if found is not None:
                head, rest = found
                body = head.body
                data.append(body.feed(rest))
        if found is None or body is None:
            heads.end()
            raise AssertionError("unreachable")  # end() raises
        ended_by_close = not body.done
        body.end()
    except ProtocolError:
        return REFUSED
    return (
        head.status,
        head.reason,
        _lengths_as_h11_gives_them(head.headers),
        b"".join(data),
        _lengths_as_h11_gives_them(body.trailers),
        None if ended_by_close else head.keep_alive and not body.trailing,
    )


def h11_reads(method: bytes, pieces: list[bytes]) -> Outcome:
    """What h11 makes of the same, as httpcore drives it (interim answers skipped)."""
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
    connection.send(h11.Request(method=method, target="/", headers=[("Host", "relay.test")]))
    connection.send(h11.EndOfMessage())
    response: h11.Response | None = None
    data: list[bytes] = []
    remaining = [*pieces, b""]  # b"": the server closed the connection
    try:
        while remaining:
            piece = remaining.pop(0)
            connection.receive_data(piece)
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    break
                if isinstance(event, h11.Response):
                    response = event
                elif isinstance(event, h11.Data):
                    data.append(bytes(event.data))
                elif isinstance(event, h11.EndOfMessage):
                    assert response is not None
                    for rest in remaining[:-1]:
                        connection.receive_data(rest)  # what came after, not read
                    reusable = (
                        connection.their_state is h11.DONE and not connection.trailing_data[0]
                    )
                    return (
                        response.status_code,
                        bytes(response.reason),
                        [(name.lower(), value) for name, value in response.headers.raw_items()],
                        b"".join(data),
                        [(name.lower(), value) for name, value in event.headers.raw_items()],
                        None if piece == b"" else reusable,
                    )
                elif isinstance(event, h11.ConnectionClosed):
                    return REFUSED
    except h11.RemoteProtocolError:
        return REFUSED
    return REFUSED


def whole(method: bytes, pieces: list[bytes]) -> Outcome:
    """What the runtime's whole-response reader makes of the same: status and body."""

    async def read() -> Outcome:
        reader = asyncio.StreamReader()
        for piece in pieces:
            reader.feed_data(piece)
        reader.feed_eof()
        try:
            response = await read_response(reader, method=method)
        except (ProtocolError, asyncio.IncompleteReadError):
            return REFUSED
        return response.status, response.body

    return LOOP.run_until_complete(read())


LOOP = asyncio.new_event_loop()


# -- what differs on purpose ---------------------------------------------------------------------


def _other_major_version(wire: bytes, ours: Outcome, theirs: Outcome) -> bool:
    """h11 reads ``HTTP/2.0 200`` (or ``HTTP/0.9``) as HTTP/1.1; the codec refuses a status
    line of another major version: such a server does not speak what we sent."""
    return ours == REFUSED and theirs != REFUSED and re.search(rb"HTTP/[02-9]\.", wire) is not None


def _chunked_with_a_length(wire: bytes, ours: Outcome, theirs: Outcome) -> bool:
    """A chunked response that also carries a Content-Length is read by its chunks by both,
    but the codec does not use its connection again (it may be an attempt at response
    splitting); h11 would."""
    lowered = wire.lower()
    return (
        ours[:-1] == theirs[:-1]
        and (ours[-1], theirs[-1]) == (False, True)
        and b"content-length" in lowered
        and b"transfer-encoding" in lowered
    )


PURPOSEFUL: dict[str, Callable[[bytes, Outcome, Outcome], bool]] = {
    "another major HTTP version is refused": _other_major_version,
    "a chunked response with a Content-Length closes its connection": _chunked_with_a_length,
}


def difference(wire: bytes, ours: Outcome, theirs: Outcome) -> str | None:
    for name, applies in PURPOSEFUL.items():
        if applies(wire, ours, theirs):
            return name
    return None


# -- generated responses --------------------------------------------------------------------------


@st.composite
def responses(draw: st.DrawFn) -> tuple[bytes, bytes]:
    """A request method and the bytes a server sends back, whole or broken."""
    method = draw(st.sampled_from([b"GET", b"POST", b"HEAD"]))
    eol = draw(st.sampled_from([b"\r\n", b"\r\n", b"\r\n", b"\n"]))
    version = draw(st.sampled_from([b"1.1"] * 8 + [b"1.0", b"2.0"]))
    status = draw(st.sampled_from([200] * 5 + [204, 304, 404, 413, 500, 101, 99]))
    reason = draw(st.sampled_from([b" OK", b" Request Entity Too Large", b"", b" ", b" \xe4"]))
    fields = [
        (draw(st.sampled_from(NAMES)), bytes(draw(st.lists(st.sampled_from(VALUE_BYTES)))))
        for _ in range(draw(st.integers(0, 3)))
    ]
    payload = draw(st.binary(max_size=40))
    framing = draw(st.sampled_from(["length", "length", "chunked", "chunked", "close"]))
    body = payload
    if framing == "length":
        length = len(payload) + draw(st.sampled_from([0] * 6 + [-1, 1]))
        written = draw(
            st.sampled_from([b"%d"] * 6 + [b"%d, %d", b" %d ", b"0%d", b"+%d", b"%d, 7"])
        )
        fields.append((b"Content-Length", written.replace(b"%d", b"%d" % max(length, 0))))
        if draw(st.booleans()) and draw(st.booleans()):
            fields.append((b"content-length", b"%d" % draw(st.sampled_from([length, 3]))))
    elif framing == "chunked":
        coding = draw(st.sampled_from([b"chunked"] * 4 + [b"Chunked", b"gzip, chunked", b"gzip"]))
        fields.append((b"Transfer-Encoding", coding))
        if draw(st.integers(0, 5)) == 0:
            fields.append((b"Content-Length", b"%d" % len(payload)))
        body = _chunked(draw, payload, eol)
    connection = draw(st.sampled_from([None, None, b"close", b"keep-alive", b"Keep-Alive, Close"]))
    if connection is not None:
        fields.append((b"Connection", connection))
    draw(st.randoms()).shuffle(fields)
    lines = [b"HTTP/%s %03d%s" % (version, status, reason)]
    for name, value in fields:
        separator = draw(st.sampled_from([b": ", b": ", b":", b":\t"]))
        line = name + separator + value
        if name in NAMES and draw(st.integers(0, 7)) == 0:  # an obsolete fold inside the value
            line = name + separator + b"a" + eol + b" \t" + value
        lines.append(line)
    head = eol.join(lines) + eol + eol
    if draw(st.integers(0, 7)) == 0:
        head = b"HTTP/1.1 100 Continue" + eol + eol + head
    wire = head + body + draw(st.sampled_from([b""] * 6 + [b"x", b"\r\n", b"HTTP/1.1 200"]))
    mutation = draw(st.sampled_from(["none"] * 9 + ["insert", "delete", "cut"]))
    if mutation != "none" and wire:
        at = draw(st.integers(0, len(wire) - 1))
        if mutation == "insert":
            wire = wire[:at] + draw(st.sampled_from(BAD_BYTES)) + wire[at:]
        elif mutation == "delete":
            wire = wire[:at] + wire[at + 1 :]
        else:
            wire = wire[:at]  # the server closes early
    return method, wire


def _chunked(draw: st.DrawFn, payload: bytes, eol: bytes) -> bytes:
    sizes = draw(st.lists(st.integers(1, 17), max_size=4))
    out, at = [], 0
    for size in sizes:
        piece = payload[at : at + size]
        at += len(piece)
        if not piece:
            break
        digits = draw(st.sampled_from([b"%x", b"%X", b"00%x", b"%x ", b"%x;ext=1", b'%x;q="a"']))
        out.append(digits % len(piece) + b"\r\n" + piece + b"\r\n")
    last = draw(st.sampled_from([b"0\r\n", b"0\r\n", b"000;end\r\n"]))
    trailers = draw(
        st.sampled_from([b"", b"", b"X-Checksum: 1" + eol, b"X-A: 1" + eol + b"X-B:2" + eol])
    )
    return b"".join(out) + last + trailers + eol


def split(draw_points: list[int], wire: bytes) -> list[bytes]:
    points = sorted({point % (len(wire) + 1) for point in draw_points})
    pieces, start = [], 0
    for point in [*points, len(wire)]:
        if point > start:
            pieces.append(wire[start:point])
            start = point
    return pieces


# -- the tests ------------------------------------------------------------------------------------


@settings(
    derandomize=True,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(responses(), st.lists(st.integers(0, 10_000), max_size=6))
@example((b"GET", b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nabc"), [])
@example((b"GET", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"), [])
@example((b"GET", b"HTTP/1.1 200 OK\nX: a\r\n b\n\n"), [3, 17])
def test_the_codec_reads_every_response_as_h11_does(
    response: tuple[bytes, bytes], points: list[int]
) -> None:
    method, wire = response
    pieces = split(points, wire)
    theirs = h11_reads(method, pieces)
    ours = codec(method, pieces)
    event("refused by h11" if theirs == REFUSED else "read by h11")
    event(f"pieces: {min(len(pieces), 4)}{'+' if len(pieces) > 4 else ''}")
    if ours != theirs:
        assert difference(wire, ours, theirs), f"{wire!r}: codec {ours!r}, h11 {theirs!r}"
    runtime = whole(method, pieces)
    if ours == REFUSED:
        assert runtime == REFUSED
    else:
        assert runtime == (ours[0], ours[3])


@pytest.mark.parametrize(
    ("name", "wire", "ours_keep", "theirs_keep"),
    [
        (
            "another major HTTP version is refused",
            b"HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n",
            None,
            None,
        ),
        (
            "a chunked response with a Content-Length closes its connection",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n"
            b"2\r\nok\r\n0\r\n\r\n",
            False,
            True,
        ),
    ],
)
def test_each_purposeful_difference_is_what_its_name_says(
    name: str, wire: bytes, ours_keep: bool | None, theirs_keep: bool | None
) -> None:
    ours, theirs = codec(b"GET", [wire]), h11_reads(b"GET", [wire])
    assert ours != theirs
    assert difference(wire, ours, theirs) == name
    if ours_keep is not None:
        assert (ours[-1], theirs[-1]) == (ours_keep, theirs_keep)
