"""What an answer is made of: token-sized pieces, and the `Answer` that holds them.

The builder (`answer.build_answer`) makes an `Answer`; `plan` sends each piece as one SSE frame,
and `merge_tool_calls` joins tool-call pieces back into whole calls for `Answer.tool_calls` and
the `stream=false` body. `usage.completion_tokens` is the sum of the sent pieces' `tokens`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

PieceKind = Literal["reasoning", "content", "tool_call"]


@dataclass(frozen=True)
class Piece:
    """One token-like piece of the answer; one SSE frame when streamed.

    `text is None` marks a `#stamp` content piece whose text is the send time. A tool-call piece
    holds the delta's `tool_calls` list: complete calls, or a `tool_stream` head or fragment.
    """

    kind: PieceKind
    text: str | None = None
    tool_calls: tuple[dict[str, Any], ...] = ()
    tokens: int = 1
    on_finish: bool = False  # rides on the last chunk's delta instead of a frame of its own


@dataclass(frozen=True)
class Answer:
    pieces: tuple[Piece, ...]
    finish_reason: str  # "stop", "length" (max_tokens reached) or "tool_calls"
    prompt_tokens: int
    web_search: tuple[dict[str, Any], ...] | None = None  # sent on one chunk (None: not sent)
    search_at: int = 0  # which data frame carries `web_search` (past the end: the last chunk)

    def texts(self, kind: PieceKind) -> list[str]:
        return [p.text or "" for p in self.pieces if p.kind == kind]

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return merge_tool_calls(self.pieces)

    @property
    def tool_call(self) -> dict[str, Any] | None:
        calls = self.tool_calls
        return calls[0] if calls else None


def merge_tool_calls(pieces: tuple[Piece, ...] | list[Piece]) -> list[dict[str, Any]]:
    """The complete calls in `pieces`, `tool_stream` fragments joined by index."""
    calls: dict[int, dict[str, Any]] = {}
    for piece in pieces:
        for delta in piece.tool_calls:
            index = delta["index"]
            function = delta.get("function", {})
            if index not in calls:
                calls[index] = {
                    "id": delta.get("id"),
                    "index": index,
                    "type": "function",
                    "function": {"name": function.get("name"), "arguments": ""},
                }
            calls[index]["function"]["arguments"] += function.get("arguments", "")
    return [calls[i] for i in sorted(calls)]
