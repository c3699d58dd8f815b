"""An open ``chat/completions`` stream: raw bytes off the wire, decoded into typed pieces."""

from __future__ import annotations

import json
from collections.abc import Iterator
from json.decoder import scanstring  # type: ignore[attr-defined]
from typing import TYPE_CHECKING, Any

from glm_relay.chat.pieces import (
    Finish,
    Piece,
    ReasoningPiece,
    SearchPiece,
    TextPiece,
    ToolCallPiece,
)
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.sse import ServerSentEvent, SSEDecoder, SSEProtocolError
from glm_relay.upstream.errors import error_from_body, failure_of_finish, transport_error

if TYPE_CHECKING:
    import httpx

_DONE = "[DONE]"
_PLAIN_MARK = '"choices":[{"index":0,"delta":{"role":"assistant","content":"'
_PLAIN_END = '"}}]}'


class UpstreamStream:
    """A 200 stream that has begun; ``read`` gives raw bytes, ``parse`` gives pieces."""

    def __init__(self, response: httpx.Response, attempts: int) -> None:
        self.response = response
        self.attempts = attempts
        self._raw = response.aiter_raw()
        self._decoder = SSEDecoder()

    async def read(self) -> bytes:
        """The next bytes off the wire, ``b""`` at the end of the body; a broken or silent
        connection is a ``RelayError``."""
        import httpx

        try:
            return await anext(self._raw)
        except StopAsyncIteration:
            return b""
        except httpx.TransportError as exc:
            raise transport_error(exc, connecting=False) from None

    def parse(self, data: bytes) -> Iterator[Piece | Finish]:
        """Decode ``data`` into pieces, in order; an error frame or garbage raises
        ``RelayError`` where it stands, after the pieces of the frames before it (one read
        may hold several frames)."""
        refused: SSEProtocolError | None = None
        try:
            events = self._decoder.feed(data)
        except SSEProtocolError as exc:
            events, refused = exc.events, exc
        yield from self._pieces(events)
        if refused is not None:
            raise RelayError(ErrorCode.UPSTREAM_PROTOCOL_ERROR, str(refused)) from None

    def _pieces(self, events: list[ServerSentEvent]) -> Iterator[Piece | Finish]:
        for event in events:
            if event.data == _DONE:
                continue
            plain = plain_content(event.data)
            if plain is not None:
                if plain.text:
                    yield plain
                continue
            try:
                chunk = json.loads(event.data)
            except ValueError:
                raise RelayError(
                    ErrorCode.UPSTREAM_PROTOCOL_ERROR, "the upstream sent a frame that is not JSON"
                ) from None
            if not isinstance(chunk, dict):
                raise RelayError(
                    ErrorCode.UPSTREAM_PROTOCOL_ERROR, "the upstream sent an odd frame"
                )
            if "error" in chunk:
                raise error_from_body(chunk, status=0)
            pieces: list[Piece | Finish] = []
            pieces_of_chunk(chunk, pieces)
            yield from pieces

    async def aclose(self) -> None:
        """Release the connection (closing it if the body was not read to the end)."""
        await self.response.aclose()


def plain_content(data: str) -> TextPiece | None:
    """The content of a chunk shaped ``{…,"choices":[{"index":0,"delta":{"role":"assistant",
    "content":"…"}}]}`` (nearly every chunk), read without parsing the whole JSON.

    ``scanstring`` (the json module's C string scanner) finds where the content string ends and
    decodes it; anything else about the chunk (a finish reason, reasoning, tool calls, another
    key order) sends it down the general path.
    """
    if not data.endswith(_PLAIN_END):
        return None
    mark = data.find(_PLAIN_MARK)
    if mark < 0 or data.find('"finish_reason"', 0, mark) >= 0:
        return None
    start = mark + len(_PLAIN_MARK)
    try:
        content, end = scanstring(data, start)
    except ValueError:
        return None
    if end != len(data) - len(_PLAIN_END) + 1:
        return None
    return TextPiece(content, data[start - 1 : end])


def pieces_of_chunk(chunk: dict[str, Any], out: list[Piece | Finish]) -> None:
    """Every piece one decoded chunk holds, in the order a reader should see them."""
    start = len(out)
    choices = chunk.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], dict) else {}
    delta = choice.get("delta") or {}
    reasoning = delta.get("reasoning_content")
    if reasoning:
        out.append(ReasoningPiece(reasoning))
    content = delta.get("content")
    if content:
        out.append(TextPiece(content))
    for call in delta.get("tool_calls") or ():
        out.append(ToolCallPiece(call))
    finish_reason = choice.get("finish_reason")
    if finish_reason:
        out.append(
            Finish(
                finish_reason,
                chunk.get("usage"),
                chunk.get("model"),
                chunk.get("id"),
                failure_of_finish(finish_reason),
            )
        )
    results = chunk.get("web_search")
    if isinstance(results, list) and results:
        # First: a wire format that writes the list on the frame of the chunk's other pieces
        # sees it before them.
        out.insert(start, SearchPiece(results, alone=len(out) == start))
