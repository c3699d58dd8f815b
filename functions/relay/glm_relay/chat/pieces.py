"""What an answer is made of, independent of who produced it and how it is written out.

An upstream client turns its wire format into these; the relay loop and the front ends' wire
formats only ever see these types.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from glm_relay.errors import RelayError


@dataclass(slots=True)
class TextPiece:
    """Answer text. ``literal`` is the text exactly as the upstream's JSON spelled it (quotes
    included), when known, so a wire format can pass it on without re-encoding."""

    text: str
    literal: str | None = None


@dataclass(slots=True)
class ReasoningPiece:
    """The model's visible thinking, before its answer."""

    text: str


@dataclass(slots=True)
class ToolCallPiece:
    """A tool call, or a fragment of one: ``call`` in OpenAI's delta shape (``index``, then
    ``id``, ``type`` and ``function.name`` on its first fragment, ``function.arguments`` text)."""

    call: dict[str, Any]


@dataclass(slots=True)
class SearchPiece:
    """Web search results the upstream grounded its answer in. ``alone``: the upstream chunk
    that carried them held nothing else; otherwise the pieces of that chunk follow this one."""

    results: list[dict[str, Any]]
    alone: bool = False


Piece = TextPiece | ReasoningPiece | ToolCallPiece | SearchPiece


@dataclass(slots=True)
class Finish:
    """The end of an answer: why it ended and what it cost. ``failure`` is set when the
    upstream's reason means the answer was cut short (a content filter, a failed inference)."""

    finish_reason: str
    usage: dict[str, Any] | None
    model: str | None
    upstream_id: str | None
    failure: RelayError | None = None


class AnswerStream(Protocol):
    """An answer being received: raw bytes in, pieces out (split so the relay loop can time
    the reads)."""

    attempts: int

    async def read(self) -> bytes:
        """The next bytes, ``b""`` at the end; a broken or silent source is a ``RelayError``."""

    def parse(self, data: bytes) -> Iterable[Piece | Finish]:
        """Decode ``data``; an in-stream error or garbage raises ``RelayError`` after the
        pieces before it."""

    async def aclose(self) -> None:
        """Release the source (closing it if it was not read to the end)."""


def delivered_chars(piece: Piece) -> int:
    """How many characters of model output ``piece`` delivers (a search result: none)."""
    if isinstance(piece, TextPiece | ReasoningPiece):
        return len(piece.text)
    if isinstance(piece, ToolCallPiece):
        function = piece.call.get("function")
        arguments = function.get("arguments") if isinstance(function, dict) else None
        return len(arguments) if isinstance(arguments, str) else 0
    return 0
