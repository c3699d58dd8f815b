"""A small HTTP/1.1 server side: read a request off a socket, write a head or a short answer.

Development only (the local function URL and REST API stage): it is the server side, which the
Lambda package never needs, so it keeps its own reading instead of the package's client codec
(``glm_relay.http1``, proven against h11).

Only what the local function URL needs: request line, headers, a Content-Length or chunked
body within the function URL's 6 MB limit, keep-alive.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from http import HTTPStatus

MAX_HEAD_BYTES = 64 * 1024
# A function URL refuses request payloads over 6 MB before the function runs.
MAX_BODY_BYTES = 6 * 1024 * 1024
# An oversized body declared with Content-Length is read and thrown away (up to this much) before
# the 413 is written: a server that closes with unread bytes resets the connection, and the
# client (a browser's fetch above all) then sees a network error instead of the status.
DISCARD_LIMIT_BYTES = 32 * 1024 * 1024


class BadRequest(Exception):
    """The bytes on the socket are not an HTTP request we can serve."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(slots=True)
class RawRequest:
    """One HTTP request as read off the socket."""

    method: str
    target: str
    version: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value
        return None

    @property
    def keep_alive(self) -> bool:
        connection = (self.header("connection") or "").lower()
        if self.version == "HTTP/1.0":
            return connection == "keep-alive"
        return connection != "close"


async def read_request(reader: asyncio.StreamReader, peer: str) -> RawRequest | None:
    """Read one request; ``None`` when the client closed an idle keep-alive connection."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial.strip():
            return None
        raise BadRequest(400, "incomplete request head") from None
    except asyncio.LimitOverrunError:
        raise BadRequest(431, "request head too large") from None
    lines = head[:-4].decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise BadRequest(400, "malformed request line")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if not sep or not name or name != name.strip():
            raise BadRequest(400, "malformed header line")
        headers.append((name.lower(), value.strip()))
    request = RawRequest(parts[0].upper(), parts[1], parts[2], headers, source_ip=peer)
    if (request.header("transfer-encoding") or "").lower() == "chunked":
        request.body = await _read_chunked(reader)
    else:
        length = request.header("content-length") or "0"
        if not length.isdigit():
            raise BadRequest(400, "bad Content-Length")
        if int(length) > MAX_BODY_BYTES:
            await _discard(reader, int(length))
            raise BadRequest(413, f"request payload too large: over {MAX_BODY_BYTES} bytes")
        request.body = await reader.readexactly(int(length)) if int(length) else b""
    return request


async def _discard(reader: asyncio.StreamReader, length: int) -> None:
    """Read and drop a body that will be refused, unless it is too large even for that."""
    if length > DISCARD_LIMIT_BYTES:
        return
    left = length
    while left:
        left -= len(await reader.readexactly(min(left, 1 << 16)))


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    body = bytearray()
    while True:
        size_line = await reader.readuntil(b"\r\n")
        try:
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
        except ValueError:
            raise BadRequest(400, "malformed chunk size") from None
        if size < 0 or len(body) + size > MAX_BODY_BYTES:
            raise BadRequest(413 if size > 0 else 400, "request payload too large or malformed")
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":
                pass  # trailers
            return bytes(body)
        body += await reader.readexactly(size)
        await reader.readexactly(2)


def response_head(status: int, headers: dict[str, str]) -> bytes:
    reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Status"
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines.extend(f"{name}: {value}" for name, value in headers.items())
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", errors="replace")


async def write_simple(
    writer: asyncio.StreamWriter, status: int, payload: dict[str, str], *, close: bool
) -> None:
    """A whole short JSON answer (the function URL's own errors)."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", "Content-Length": str(len(body))}
    if close:
        headers["Connection"] = "close"
    with contextlib.suppress(ConnectionError):
        writer.write(response_head(status, headers) + body)
        await writer.drain()
