"""How the local function URL writes a streamed answer to its client, as a function URL does:
the prelude read off the first chunk, one HTTP chunk per frame, and (optionally, as Lambda)
a body that runs on to its end after the client left.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator

from glm_relay.http1 import CHUNK_FORMAT
from glm_relay.runtime.loop import PRELUDE_DELIMITER, close_body, pump


def read_prelude(first_chunk: bytes) -> tuple[int, dict[str, str]]:
    """Status and headers from the stream's prelude, read as a function URL reads it: the JSON
    before the first 8 NUL bytes (cookies become ``Set-Cookie`` headers)."""
    prelude, delimiter, rest = first_chunk.partition(PRELUDE_DELIMITER)
    if not delimiter or rest:
        raise ValueError("the first chunk must be the prelude and its delimiter")
    meta = json.loads(prelude)
    headers = {str(k): str(v) for k, v in (meta.get("headers") or {}).items()}
    for cookie in meta.get("cookies") or ():
        headers.setdefault("Set-Cookie", cookie)
    return int(meta.get("statusCode", 200)), headers


class ClientSink:
    """The client's socket; with ``keep_running``, a client that left makes writes no-ops
    instead of errors, so the body goes on to its end."""

    __slots__ = ("gone", "keep_running", "writer")

    def __init__(self, writer: asyncio.StreamWriter, *, keep_running: bool) -> None:
        self.writer = writer
        self.keep_running = keep_running
        self.gone = False

    async def write(self, data: bytes) -> None:
        if self.gone:
            return
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, RuntimeError):
            if not self.keep_running:
                raise
            self.gone = True


async def send_all(body: AsyncIterator[bytes], sink: ClientSink) -> bool:
    """The runtime's pump, writing HTTP chunks; whether the body ended cleanly."""

    async def send(frame: bytes) -> None:
        await sink.write(CHUNK_FORMAT % (len(frame), frame))

    if await pump(body, send) is not None:
        # A failure after the first byte: a function URL cuts the connection.
        return False
    await sink.write(b"0\r\n\r\n")
    return not sink.gone


async def run_on(
    sending: asyncio.Future[bool], body: AsyncIterator[bytes], request_id: str
) -> None:
    """What Lambda does after a client left: the invocation runs to the end of its body."""
    with contextlib.suppress(Exception):
        await sending
    await close_body(body, request_id)
