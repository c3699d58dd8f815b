"""The request side of HTTP/1.1 for a client: a request's head, a chunked body and its trailer
section, and the framing constants both sides share."""

from __future__ import annotations

CRLF = b"\r\n"
# One chunk of a chunked body: size in hex, CRLF, the data, CRLF.
CHUNK_FORMAT = b"%x\r\n%b\r\n"
# A chunk of size zero ends a chunked body; the trailer section and an empty line follow it.
LAST_CHUNK = b"0\r\n"


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A request's start line and header section, ending with the empty line.

    Raises:
        ValueError: a header name or value could end the line early (CR, LF, NUL): sent as is,
            it would let a value smuggle headers of its own.
    """
    lines = [b"%s %s HTTP/1.1" % (method, target)]
    lines.extend(_field_lines(headers))
    lines.append(b"")
    lines.append(b"")
    return CRLF.join(lines)


def chunked(payload: bytes) -> bytes:
    """``payload`` as a chunked body: one chunk (none if empty), then the last chunk."""
    return (CHUNK_FORMAT % (len(payload), payload) if payload else b"") + LAST_CHUNK + CRLF


def last_chunk(trailers: list[tuple[bytes, bytes]]) -> bytes:
    """The end of a chunked body: the last chunk, ``trailers``, the empty line.

    Raises:
        ValueError: a trailer name or value holds a CR, LF or NUL.
    """
    return LAST_CHUNK + b"".join(line + CRLF for line in _field_lines(trailers)) + CRLF


def _field_lines(fields: list[tuple[bytes, bytes]]) -> list[bytes]:
    lines = []
    for name, value in fields:
        if breaks_line(name) or breaks_line(value):
            raise ValueError(f"header {name!r} holds a line break or NUL")
        lines.append(b"%s: %s" % (name, value))
    return lines


def breaks_line(field_bytes: bytes) -> bool:
    """Whether a header name or value holds a CR, LF or NUL (a line end to some parsers)."""
    return b"\r" in field_bytes or b"\n" in field_bytes or b"\x00" in field_bytes
