"""OpenAI's wire formats for a relayed answer: ``chat.completion.chunk`` frames, or one
``chat.completion`` collected from the same relay loop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_relay.chat.pieces import ReasoningPiece, SearchPiece, TextPiece, ToolCallPiece
from glm_relay.sse import KEEPALIVE_FRAME, dumps_data
from glm_relay.web.openai_errors import error_object

if TYPE_CHECKING:
    from glm_relay.chat.pieces import Finish, Piece
    from glm_relay.chat.relay import Outcome
    from glm_relay.errors import RelayError

DONE_FRAME = b"data: [DONE]\n\n"


def _frame(data: dict[str, Any]) -> bytes:
    """One ``data:`` line: the JSON holds no raw line break of any kind."""
    return f"data: {dumps_data(data)}\n\n".encode()


class OpenAIChunks:
    """``chat.completion.chunk`` frames: no ``id:`` or ``event:`` lines, ``[DONE]`` at the end.

    A stream that fails after it began ends with ``data: {"error": {...}}`` and no ``[DONE]``:
    the SDK raises ``APIError`` on that frame, and a client that ignores it still does not mistake
    the answer for a complete one.
    """

    def __init__(self, completion_id: str, model: str, created: int, include_usage: bool) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._calls = 0

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            **self._head,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: only the last chunk carries it
        return _frame(chunk)

    def opening(self) -> bytes | None:
        return self._chunk({"role": "assistant", "content": ""})

    def piece(self, piece: Piece) -> bytes:
        if isinstance(piece, TextPiece):
            return self._chunk({"content": piece.text})
        if isinstance(piece, ReasoningPiece):
            return self._chunk({"reasoning_content": piece.text})
        if isinstance(piece, ToolCallPiece):
            call = {"index": self._calls, **piece.call}
            self._calls += 1
            return self._chunk({"tool_calls": [call]})
        assert isinstance(piece, SearchPiece)
        return _frame({**self._head, "choices": [], "web_search": piece.results})

    def keepalive(self) -> bytes:
        return KEEPALIVE_FRAME

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        frames = self._chunk({}, finish.finish_reason)
        if self._include_usage:
            frames += _frame({**self._head, "choices": [], "usage": finish.usage})
        return frames + DONE_FRAME

    def error(self, error: RelayError) -> bytes:
        return _frame({"error": error_object(error)})


class CollectedAnswer:
    """A wire format that writes nothing and keeps the answer, for ``stream: false``."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls: list[dict[str, Any]] = []
        self.web_search: list[dict[str, Any]] = []
        self.finish: Finish | None = None
        self.failure: RelayError | None = None

    def opening(self) -> bytes | None:
        return None

    def piece(self, piece: Piece) -> bytes:
        if isinstance(piece, TextPiece):
            self.content.append(piece.text)
        elif isinstance(piece, ReasoningPiece):
            self.reasoning.append(piece.text)
        elif isinstance(piece, ToolCallPiece):
            # Zhipu sends each call whole; a non-streamed call has no index.
            self.tool_calls.append({k: v for k, v in piece.call.items() if k != "index"})
        else:
            self.web_search.extend(piece.results)
        return b""

    def keepalive(self) -> bytes:
        return b""

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        self.finish = finish
        return b""

    def error(self, error: RelayError) -> bytes:
        self.failure = error
        return b""

    def message(self) -> dict[str, Any]:
        """The ``choices[0].message`` of the collected answer."""
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        if self.reasoning:
            message["reasoning_content"] = "".join(self.reasoning)
        if self.tool_calls:
            message["tool_calls"] = self.tool_calls
            message["content"] = message["content"] or None
        return message
