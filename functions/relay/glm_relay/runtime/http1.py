"""HTTP/1.1 on raw asyncio streams: the framing constants and a response reader.

The Runtime API client and the secrets-extension source both speak plain HTTP/1.1 to a local
peer; one reader serves both, so neither needs an HTTP library on the cold-start path.
"""

from __future__ import annotations

import asyncio
from typing import NamedTuple

CRLF = b"\r\n"
# One chunk of a chunked body: size in hex, CRLF, the data, CRLF.
CHUNK_FORMAT = b"%x\r\n%b\r\n"
HEAD_END = b"\r\n\r\n"
# A chunk of size zero ends a chunked body; the trailer section and an empty line follow it.
LAST_CHUNK = b"0\r\n"
NO_BODY_STATUSES = frozenset({204, 304})


class Response(NamedTuple):
    """One HTTP response; header names lowercased."""

    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


async def read_response(reader: asyncio.StreamReader) -> Response:
    """Read one HTTP/1.1 response: status line, headers, then a Content-Length or chunked body.

    Raises ``asyncio.IncompleteReadError`` if the peer closes before a whole response arrived.
    """
    while True:
        head = await reader.readuntil(HEAD_END)
        status_line, _, header_block = head[: -len(HEAD_END)].decode("latin-1").partition("\r\n")
        version, _, rest = status_line.partition(" ")
        status = int(rest[:3])
        # 1xx answers are interim (e.g. 100 Continue); the real one follows.
        if status >= 200:
            break
    headers = _parse_headers(header_block)
    connection = headers.get("connection", "").lower()
    keep_alive = connection != "close" if version == "HTTP/1.1" else connection == "keep-alive"
    if status in NO_BODY_STATUSES:
        body = b""
    elif "chunked" in headers.get("transfer-encoding", "").lower():
        body = await _read_chunked(reader)
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    else:
        # Neither length nor chunking: the body runs until the server closes the connection.
        body = await reader.read()
        keep_alive = False
    return Response(status, headers, body, keep_alive)


def _parse_headers(block: str) -> dict[str, str]:
    headers: dict[str, str] = {}
    for line in block.split("\r\n"):
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return headers


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    parts: list[bytes] = []
    while True:
        size_line = await reader.readuntil(CRLF)
        # Chunk extensions (";name=value") may follow the hex size; they carry nothing for us.
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            break
        # Each chunk's data is followed by its own CRLF.
        parts.append((await reader.readexactly(size + len(CRLF)))[: -len(CRLF)])
    # Skip the trailer section up to the empty line that ends the message.
    while await reader.readuntil(CRLF) != CRLF:
        pass
    return b"".join(parts)
