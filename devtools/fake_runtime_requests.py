"""Reading the runtime's HTTP/1.1 requests for the fake Lambda Runtime API: the head, and a body
sent with a Content-Length or chunked (a streamed ``/response`` chunk by chunk, with trailers).

Written for the stand-in alone rather than shared with ``devtools.http11``: it records every
chunk as it arrives and keeps the trailers, which the function URL's reader throws away.
Development only (the Runtime API's server side, in tests and ``make run``): the Lambda package's
own HTTP/1.1 is the client codec ``glm_relay.http1``.
"""

from __future__ import annotations

import asyncio

from devtools.fake_runtime_records import Invocation, RequestRecord, record_chunk

HEAD_END = b"\r\n\r\n"
CRLF = b"\r\n"


def parse_request_head(head: bytes, connection: int) -> RequestRecord:
    request_line, *header_lines = head[: -len(HEAD_END)].decode("latin-1").split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers: dict[str, str] = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return RequestRecord(method, path, connection, headers)


async def read_all(reader: asyncio.StreamReader, request: RequestRecord) -> bytes:
    if "chunked" in request.headers.get("transfer-encoding", ""):
        parts = []
        while (part := await _read_chunk(reader)) is not None:
            parts.append(part)
        await _read_trailers(reader)
        return b"".join(parts)
    return await reader.readexactly(int(request.headers.get("content-length", "0")))


async def read_chunks(reader: asyncio.StreamReader, invocation: Invocation) -> None:
    while (data := await _read_chunk(reader)) is not None:
        record_chunk(invocation, data)
    invocation.trailers = await _read_trailers(reader)


async def _read_chunk(reader: asyncio.StreamReader) -> bytes | None:
    """One chunk's data, or None for the last (zero-size) chunk."""
    size = int((await reader.readuntil(CRLF)).split(b";", 1)[0], 16)
    if size == 0:
        return None
    data = await reader.readexactly(size + len(CRLF))
    if data[-2:] != CRLF:
        raise ValueError("chunk data not followed by CRLF")
    return data[:-2]


async def _read_trailers(reader: asyncio.StreamReader) -> dict[str, str]:
    trailers: dict[str, str] = {}
    while (line := await reader.readuntil(CRLF)) != CRLF:
        name, _, value = line.decode("latin-1").partition(":")
        trailers[name.strip().lower()] = value.strip()
    return trailers
