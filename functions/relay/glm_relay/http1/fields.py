"""Header fields as a response carries them, in its head or in a chunked body's trailer section:
lines ended by LF (a CR before it dropped), folded lines unfolded, every field checked, and the
fields that frame a body read on the way (RFC 9112, sections 2.2, 5 and 6; as h11 reads them)."""

from __future__ import annotations

# A field name is a token (RFC 9110, 5.6.2).
_TOKEN_BYTES = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Besides SP and HTAB, the whitespace (and NUL) a field value may not hold anywhere.
_NOT_IN_VALUE = b"\x00\n\r\x0b\x0c"
# A Content-Length of more digits than this is refused (h11's bound: 2**64 has 20).
MAX_LENGTH_DIGITS = 20


class ProtocolError(ValueError):
    """The server's bytes are not a valid HTTP/1.1 response."""


def split_lines(block: bytes) -> list[bytes]:
    """The lines of a head or trailer section: LF ends a line, a CR right before it is dropped
    (RFC 9112, 2.2: a recipient may take a bare LF as a line end; h11 does)."""
    return [line[:-1] if line[-1:] == b"\r" else line for line in block.split(b"\n")]


def blank_line(buffer: bytes | bytearray, start: int = 0) -> tuple[int, int] | None:
    """Where the first empty line (LF, optional CR, LF) at or after ``start`` begins and where
    the bytes after it start; ``None`` if there is none yet."""
    bare = buffer.find(b"\n\n", start)
    crlf = buffer.find(b"\n\r\n", start)
    if bare >= 0 and (crlf < 0 or bare < crlf):
        return bare, bare + 2
    if crlf >= 0:
        return crlf, crlf + 3
    return None


def has_bad_byte(text: bytes) -> bool:
    """Whether ``text`` holds a NUL, CR, LF, VT or FF (never valid in a status line or value)."""
    return len(text.translate(None, _NOT_IN_VALUE)) != len(text)


class Fields:
    """Checked header fields (names as sent) and what they say about framing."""

    __slots__ = ("chunked", "close", "items", "length")

    def __init__(self) -> None:
        self.items: list[tuple[bytes, bytes]] = []
        self.length: int | None = None  # the Content-Length, if one was sent
        self.chunked = False  # Transfer-Encoding: chunked
        self.close = False  # Connection: close


def parse_fields(lines: list[bytes]) -> Fields:
    """Check and read header field lines.

    Raises:
        ProtocolError: a malformed line; a value with a control byte; Content-Length values
            that disagree or are not a number; a Transfer-Encoding other than exactly
            ``chunked``, or two of them (a coding we cannot undo would hand the caller bytes
            that are not the body).
    """
    fields = Fields()
    length_text: bytes | None = None
    for line in _unfolded(lines):
        name, colon, value = line.partition(b":")
        if not colon or not name or name.translate(None, _TOKEN_BYTES):
            raise ProtocolError("the server sent a malformed header line")
        value = value.strip(b" \t")
        if has_bad_byte(value):
            raise ProtocolError("the server sent a line break, NUL or control byte in a header")
        lowered = name.lower()
        if lowered == b"content-length":
            seen = length_text is not None
            length_text = _length(value, length_text)
            if seen:
                continue  # the same length again: kept once, as h11 keeps it
        elif lowered == b"transfer-encoding":
            if fields.chunked:
                raise ProtocolError("the server sent two Transfer-Encoding headers")
            if value.lower() != b"chunked":
                raise ProtocolError("the server's Transfer-Encoding is not just chunked")
            fields.chunked = True
        elif lowered == b"connection":
            fields.close = fields.close or any(
                item.strip().lower() == b"close" for item in value.split(b",")
            )
        fields.items.append((name, value))
    if length_text is not None:
        fields.length = int(length_text)
    return fields


def _length(value: bytes, before: bytes | None) -> bytes:
    """A Content-Length value ("5", or a list of one number "5, 5"), checked against any sent
    before."""
    texts = {part.strip() for part in value.split(b",")}
    text = texts.pop()
    if texts or not text.isdigit() or len(text) > MAX_LENGTH_DIGITS:
        raise ProtocolError("the server's Content-Length is not one number")
    if before is not None and before != text:
        raise ProtocolError("the server sent Content-Length headers that disagree")
    return text


def _unfolded(lines: list[bytes]) -> list[bytes]:
    """``lines`` with obsolete line folding undone: a line starting with SP or HTAB continues the
    one before, joined by a space (RFC 9112, 5.2)."""
    out: list[bytes] = []
    for line in lines:
        if line[:1] in (b" ", b"\t"):
            if not out:
                raise ProtocolError("the server's headers start with a continuation line")
            out[-1] = out[-1] + b" " + line.lstrip(b" \t")
        else:
            out.append(line)
    return out
