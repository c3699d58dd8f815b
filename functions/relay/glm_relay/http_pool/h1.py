"""HTTP/1.1 framing for a client, without I/O: a request's head, a response's head, and the
decoders of a response body (a Content-Length, chunked, or running until the server closes).

Only what a client sending one request at a time on a connection needs (RFC 9112): no
pipelining, no upgrades. Anything that breaks the framing is a ``ProtocolError``, and the
connection it came on is not used again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from glm_relay.runtime.http1 import CHUNK_FORMAT, CRLF, LAST_CHUNK

# A response head larger than this is refused (what a server sends is a few hundred bytes).
MAX_HEAD_BYTES = 64 * 1024
# A chunk-size line (hex size and extensions) or trailer line longer than this is refused.
MAX_LINE_BYTES = 4 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class ProtocolError(Exception):
    """The server's bytes are not a valid HTTP/1.1 response."""


def request_head(method: bytes, target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """A request's start line and header section, ending with the empty line.

    Raises:
        ValueError: a header name or value could end the line early (CR, LF, NUL): sent as is,
            it would let a value smuggle headers of its own.
    """
    lines = [b"%s %s HTTP/1.1" % (method, target)]
    for name, value in headers:
        if _breaks_line(name) or _breaks_line(value):
            raise ValueError(f"header {name!r} holds a line break or NUL")
        lines.append(b"%s: %s" % (name, value))
    lines.append(b"")
    lines.append(b"")
    return CRLF.join(lines)


def chunked(payload: bytes) -> bytes:
    """``payload`` as a chunked body: one chunk (none if empty), then the last chunk."""
    return (CHUNK_FORMAT % (len(payload), payload) if payload else b"") + LAST_CHUNK + CRLF


class Body:
    """Decodes a response body fed in arbitrary pieces; ``done`` once it is complete."""

    done = False

    def feed(self, data: bytes) -> bytes:
        """The body bytes in ``data`` (framing removed); bytes past the body's end are an
        error, since nothing else may arrive on the connection before the next request."""
        raise NotImplementedError

    def end(self) -> None:
        """The server closed the connection: fine only if the body was complete.

        Raises:
            ProtocolError: the body was cut short.
        """
        if not self.done:
            raise ProtocolError("the server closed the connection before the body ended")


class LengthBody(Body):
    """A body of a known length (``Content-Length``, or none at all)."""

    def __init__(self, length: int) -> None:
        self.remaining = length
        self.done = length == 0

    def feed(self, data: bytes) -> bytes:
        if len(data) > self.remaining:
            raise ProtocolError("the server sent more than its Content-Length")
        self.remaining -= len(data)
        self.done = self.remaining == 0
        return data


class UntilCloseBody(Body):
    """A body without a length: it ends when the server closes the connection."""

    def feed(self, data: bytes) -> bytes:
        return data

    def end(self) -> None:
        self.done = True


class ChunkedBody(Body):
    """A ``Transfer-Encoding: chunked`` body: hex size, CRLF, data, CRLF; a zero size, any
    trailer fields and an empty line end it."""

    def __init__(self) -> None:
        self._pending = b""  # an incomplete size line, chunk end or trailer line
        self._remaining = 0  # data bytes still to come in the current chunk
        self._chunk_end = False  # the CRLF after a chunk's data is still to come
        self._trailer = False  # past the last chunk, reading trailer lines

    def feed(self, data: bytes) -> bytes:
        if self.done:
            if data:
                raise ProtocolError("the server sent bytes after the chunked body ended")
            return b""
        out: list[bytes] = []
        view = self._pending + data if self._pending else data
        self._pending = b""
        at, size = 0, len(view)
        while at < size and not self.done:
            if self._remaining:
                take = min(self._remaining, size - at)
                out.append(view[at : at + take])
                at += take
                self._remaining -= take
                self._chunk_end = self._remaining == 0
                continue
            end = view.find(CRLF, at)
            if end < 0:
                if size - at > MAX_LINE_BYTES:
                    raise ProtocolError("a chunk size or trailer line is too long")
                self._pending = view[at:]
                break
            line = view[at:end]
            at = end + 2
            if self._chunk_end:
                if line:
                    raise ProtocolError("a chunk's data ran past its size")
                self._chunk_end = False
            elif self._trailer:
                self.done = not line  # the empty line ends the message; trailers are dropped
            else:
                self._start_chunk(line)
        if self.done and at < size:
            raise ProtocolError("the server sent bytes after the chunked body ended")
        return b"".join(out) if len(out) != 1 else out[0]

    def _start_chunk(self, line: bytes) -> None:
        # Chunk extensions (";name=value") may follow the size; they carry nothing for us.
        text = line.split(b";", 1)[0].strip()
        if not text or len(text) > 16 or text.strip(b"0123456789abcdefABCDEF"):
            raise ProtocolError("a chunk size is not a hexadecimal number")
        self._remaining = int(text, 16)
        self._trailer = self._remaining == 0


@dataclass(slots=True)
class ResponseHead:
    """A response's status line and headers (names as sent), and how its body is framed."""

    status: int
    reason: bytes
    headers: list[tuple[bytes, bytes]]
    keep_alive: bool
    body: Body = field(repr=False)


def parse_head(block: bytes, *, method: bytes) -> ResponseHead:
    """Parse a response head (``block`` without its final empty line) to a request ``method``.

    Raises:
        ProtocolError: not a valid HTTP/1.x status line, header line or framing.
    """
    status_line, *lines = block.split(CRLF)
    version, _, rest = status_line.partition(b" ")
    code, _, reason = rest.partition(b" ")
    if version not in (b"HTTP/1.1", b"HTTP/1.0") or len(code) != 3 or not code.isdigit():
        raise ProtocolError("the server's status line is not HTTP/1.1")
    status = int(code)
    headers: list[tuple[bytes, bytes]] = []
    connection_tokens: list[bytes] = []
    lengths: set[bytes] = set()
    codings: list[bytes] = []
    for line in lines:
        if _breaks_line(line):
            # A bare CR or LF ends a line for some parsers and not for others.
            raise ProtocolError("the server sent a line break or NUL inside a header")
        name, colon, value = line.partition(b":")
        if not colon or not name or name != name.strip() or line[:1] in (b" ", b"\t"):
            raise ProtocolError("the server sent a malformed header line")
        value = value.strip(b" \t")
        headers.append((name, value))
        lowered = name.lower()
        if lowered == b"content-length":
            lengths.update(part.strip(b" \t") for part in value.split(b","))
        elif lowered == b"transfer-encoding":
            codings.extend(item.lower() for item in _list_items(value))
        elif lowered == b"connection":
            connection_tokens.extend(item.lower() for item in _list_items(value))
    keep_alive = b"close" not in connection_tokens and version == b"HTTP/1.1"
    body: Body
    if method == b"HEAD" or status in _NO_BODY_STATUSES or status < 200:
        body = LengthBody(0)
    elif codings:
        if codings[-1] != b"chunked":
            body, keep_alive = UntilCloseBody(), False
        else:
            body = ChunkedBody()
            # With a Content-Length as well, the chunking decides; such a response may be an
            # attempt at response splitting, so nothing else is read from that connection.
            keep_alive = keep_alive and not lengths
    elif lengths:
        length = lengths.pop()
        if lengths or not length.isdigit() or len(length) > 18:
            raise ProtocolError("the server's Content-Length is not one number")
        body = LengthBody(int(length))
    else:
        body, keep_alive = UntilCloseBody(), False
    return ResponseHead(status, reason, headers, keep_alive, body)


def _list_items(value: bytes) -> list[bytes]:
    """The items of a comma-separated header value; empty ones are ignored (RFC 9110, 5.6.1)."""
    return [item for item in (part.strip(b" \t") for part in value.split(b",")) if item]


def _breaks_line(field_bytes: bytes) -> bool:
    """Whether a header line or part holds a CR, LF or NUL (a line end to some parsers)."""
    return b"\r" in field_bytes or b"\n" in field_bytes or b"\x00" in field_bytes
