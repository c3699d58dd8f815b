"""A response's head: found in bytes arriving in pieces, its status line and fields checked, and
how its body is framed."""

from __future__ import annotations

from glm_relay.http1.body import Body, ChunkedBody, LengthBody, UntilCloseBody
from glm_relay.http1.fields import (
    ProtocolError,
    blank_line,
    has_bad_byte,
    parse_fields,
    split_lines,
)

# A response head larger than this is refused (what a server sends is a few hundred bytes).
MAX_HEAD_BYTES = 64 * 1024
_NO_BODY_STATUSES = frozenset({204, 304})


class ResponseHead:
    """A response's status line and headers (names as sent), and how its body is framed."""

    __slots__ = ("body", "headers", "keep_alive", "reason", "status")

    def __init__(
        self,
        status: int,
        reason: bytes,
        headers: list[tuple[bytes, bytes]],
        keep_alive: bool,
        body: Body,
    ) -> None:
        self.status = status
        self.reason = reason
        self.headers = headers
        self.keep_alive = keep_alive  # whether the server keeps the connection open after it
        self.body = body


def parse_head(block: bytes, *, method: bytes) -> ResponseHead:
    """Parse a response head (``block`` without the empty line that ends it) to a request
    ``method``. A 1xx head is interim: its body is empty and the real answer follows.

    Raises:
        ProtocolError: not an HTTP/1.x status line, a bad header line, or broken framing.
    """
    status_line, *lines = split_lines(block)
    status, reason, minor = _status_line(status_line)
    fields = parse_fields(lines)
    keep_alive = not fields.close and minor >= b"1"
    body: Body
    if method == b"HEAD" or status in _NO_BODY_STATUSES or status < 200:
        body = LengthBody(0)
    elif fields.chunked:
        body = ChunkedBody()
        # With a Content-Length as well, the chunking decides (h11 agrees); such a response may
        # be an attempt at response splitting, so nothing else is read from that connection.
        keep_alive = keep_alive and fields.length is None
    elif fields.length is not None:
        body = LengthBody(fields.length)
    else:
        body, keep_alive = UntilCloseBody(), False
    return ResponseHead(status, reason, fields.items, keep_alive, body)


def _status_line(line: bytes) -> tuple[int, bytes, bytes]:
    """Status code, reason phrase and minor version of ``HTTP/1.x NNN[ reason]``."""
    code = line[9:12]
    if (
        line[:7] != b"HTTP/1."
        or not line[7:8].isdigit()
        or line[8:9] != b" "
        or len(code) != 3
        or not code.isdigit()
        or (len(line) > 12 and line[12:13] != b" ")
        or has_bad_byte(line)
    ):
        raise ProtocolError("the server's status line is not HTTP/1.x")
    status = int(code)
    if status < 100:
        raise ProtocolError("the server's status code is under 100")
    return status, line[13:], line[7:8]


class HeadReader:
    """Finds a response's head in bytes fed in pieces, skipping interim (1xx) answers.

    ``feed`` gives the final head and the bytes after it (the start of the body) once they are
    there, else ``None``. The search resumes where it stopped, so a head trickling in costs
    linear time, and it is bounded by ``MAX_HEAD_BYTES``.
    """

    __slots__ = ("_buffer", "_method", "_searched")

    def __init__(self, method: bytes) -> None:
        self._method = method
        self._buffer: bytes | bytearray = b""
        self._searched = 0

    def feed(self, data: bytes) -> tuple[ResponseHead, bytes] | None:
        """Raises:
        ProtocolError: a bad head, a 101 nobody asked for, or no end within the bound."""
        if self._buffer:
            if isinstance(self._buffer, bytes):
                self._buffer = bytearray(self._buffer)
            self._buffer += data
            buffer: bytes | bytearray = self._buffer
        else:
            buffer = data
        while True:
            found = blank_line(buffer, self._searched)
            if found is None:
                if len(buffer) > MAX_HEAD_BYTES:
                    raise ProtocolError("the server's response head is too large")
                self._searched = max(0, len(buffer) - 2)
                self._buffer = buffer
                return None
            end, after = found
            head = parse_head(bytes(buffer[:end]), method=self._method)
            buffer = buffer[after:]
            self._searched = 0
            if head.status >= 200:
                self._buffer = b""
                return head, bytes(buffer)
            if head.status == 101:
                raise ProtocolError("the server switched protocols unasked")

    def end(self) -> None:
        """The server closed the connection before a whole head.

        Raises:
            ProtocolError: always.
        """
        if self._buffer:
            raise ProtocolError("the server closed the connection in the middle of a head")
        raise ProtocolError("the server closed the connection without a response")
