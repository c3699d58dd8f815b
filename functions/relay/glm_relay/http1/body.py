"""The decoders of a response body fed in arbitrary pieces: a known length, chunked, or running
until the server closes the connection.

Bytes past the body's end are not part of the response: they are kept in ``trailing`` (and the
connection they came on must not serve another request), as h11 keeps them as trailing data.
"""

from __future__ import annotations

from glm_relay.http1.fields import ProtocolError, blank_line, parse_fields, split_lines

# A chunk-size line (hex size and extensions) longer than this is refused.
MAX_LINE_BYTES = 4 * 1024
# A trailer section larger than this is refused.
MAX_TRAILER_BYTES = 16 * 1024
# A chunk size of more hex digits than this is refused (h11's bound).
_MAX_SIZE_DIGITS = 20
_HEX_DIGITS = b"0123456789abcdefABCDEF"
_CRLF = b"\r\n"


class Body:
    """Decodes a response body; ``done`` once it is complete."""

    done = False
    trailing = b""  # bytes that came after the body's end
    trailers: list[tuple[bytes, bytes]] = []  # noqa: RUF012  (a chunked body's own are new)

    def feed(self, data: bytes) -> bytes:
        """The body bytes in ``data`` (framing removed).

        Raises:
            ProtocolError: ``data`` breaks the framing.
        """
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
        remaining = self.remaining
        if len(data) <= remaining:
            self.remaining = remaining - len(data)
            self.done = self.remaining == 0
            return data
        self.trailing += data[remaining:]
        self.remaining = 0
        self.done = True
        return data[:remaining]


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
        self._pending = b""  # an incomplete size line or trailer section
        self._remaining = 0  # data bytes still to come in the current chunk
        self._chunk_end = b""  # what is still to come of the CRLF after a chunk's data
        self._trailer = False  # past the last chunk, reading the trailer section
        self.trailers = []

    def feed(self, data: bytes) -> bytes:
        if self.done:
            self.trailing += data
            return b""
        out: list[bytes] = []
        view = self._pending + data if self._pending else data
        self._pending = b""
        at, size = 0, len(view)
        while at < size:
            if self._remaining:
                take = min(self._remaining, size - at)
                out.append(view[at : at + take])
                at += take
                self._remaining -= take
                if not self._remaining:
                    self._chunk_end = _CRLF
            elif self._chunk_end:
                expected = self._chunk_end
                got = view[at : at + len(expected)]
                if got != expected[: len(got)]:
                    raise ProtocolError("a chunk's data ran past its size")
                at += len(got)
                self._chunk_end = expected[len(got) :]
            elif self._trailer:
                at = self._read_trailers(view, at)
                break
            else:
                end = view.find(_CRLF, at)
                if end < 0:
                    if size - at > MAX_LINE_BYTES:
                        raise ProtocolError("a chunk size line is too long")
                    self._pending = view[at:]
                    break
                self._start_chunk(view[at:end])
                at = end + 2
        if self.done and at < size:
            self.trailing = view[at:]
        return b"".join(out) if len(out) != 1 else out[0]

    def _start_chunk(self, line: bytes) -> None:
        # Chunk extensions (";name=value") may follow the size; they carry nothing for us.
        digits, semicolon, extensions = line.partition(b";")
        if not semicolon:
            digits = digits.rstrip(b" \t")
        if (
            not digits
            or len(digits) > _MAX_SIZE_DIGITS
            or digits.translate(None, _HEX_DIGITS)
            or b"\n" in extensions
        ):
            raise ProtocolError("a chunk size is not a hexadecimal number")
        self._remaining = int(digits, 16)
        self._trailer = self._remaining == 0

    def _read_trailers(self, view: bytes, at: int) -> int:
        """Read the trailer section from ``view[at:]`` if it is all there (else keep it for
        the next piece); returns where the body ends."""
        if view[at : at + 1] == b"\n":
            end, after = at, at + 1
        elif view[at : at + 2] == _CRLF:
            end, after = at, at + 2
        else:
            found = blank_line(view, at)
            if found is None:
                if len(view) - at > MAX_TRAILER_BYTES:
                    raise ProtocolError("the trailer section is too large")
                self._pending = view[at:]
                return len(view)
            end, after = found
            self.trailers = parse_fields(split_lines(view[at:end])).items
        self.done = True
        return after
