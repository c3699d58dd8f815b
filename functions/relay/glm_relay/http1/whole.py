"""A whole response read off an ``asyncio.StreamReader``: what the runtime loop's Runtime API
client and the secrets-extension source need (a local peer, one small answer at a time), on the
same codec the connection pool streams with."""

from __future__ import annotations

import asyncio
from typing import NamedTuple

from glm_relay.http1.fields import ProtocolError
from glm_relay.http1.head import HeadReader

# What one read asks the stream for at most.
_READ_SIZE = 64 * 1024


class Response(NamedTuple):
    """One HTTP response; header names lowercased (a repeated header: the last one)."""

    status: int
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


async def read_response(reader: asyncio.StreamReader, *, method: bytes = b"GET") -> Response:
    """Read one response to a ``method`` request, body and all.

    Raises:
        asyncio.IncompleteReadError: the peer closed before a whole response arrived (on a
            reused connection, the caller may send the request again on a new one).
        ProtocolError: the bytes are not a valid HTTP/1.1 response.
    """
    heads = HeadReader(method)
    while True:
        data = await reader.read(_READ_SIZE)
        if not data:
            raise asyncio.IncompleteReadError(b"", None)
        found = heads.feed(data)
        if found is not None:
            break
    head, rest = found
    body = head.body
    parts = [body.feed(rest)] if rest else []
    while not body.done:
        data = await reader.read(_READ_SIZE)
        if not data:
            try:
                body.end()
            except ProtocolError:
                raise asyncio.IncompleteReadError(b"".join(parts), None) from None
            break
        parts.append(body.feed(data))
    headers = {
        name.decode("latin-1").lower(): value.decode("latin-1") for name, value in head.headers
    }
    keep_alive = head.keep_alive and not body.trailing
    return Response(head.status, headers, b"".join(parts), keep_alive)
