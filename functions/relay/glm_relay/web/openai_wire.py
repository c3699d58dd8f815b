"""OpenAI's wire formats for a relayed answer: ``chat.completion.chunk`` frames, or one
``chat.completion`` collected from the same relay loop.

Finish reasons are OpenAI's: ``model_context_window_exceeded`` is ``length``; ``sensitive`` (the
upstream's content filter stopped the answer) is ``content_filter``, a normal end as OpenAI
writes it, with what was sent before it; ``network_error`` is an error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_relay.chat.pieces import ReasoningPiece, SearchPiece, TextPiece, ToolCallPiece
from glm_relay.chat.tools import ToolCalls
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.sse import KEEPALIVE_FRAME, dumps_data
from glm_relay.web.openai_errors import error_object

if TYPE_CHECKING:
    from glm_relay.chat.pieces import Finish, Piece
    from glm_relay.chat.relay import Outcome, RelayBody
    from glm_relay.chat.session import ChatSession

DONE_FRAME = b"data: [DONE]\n\n"
FINISH_REASONS = {"model_context_window_exceeded": "length", "sensitive": "content_filter"}


def finish_reason(finish: Finish) -> str:
    """The upstream's finish reason as OpenAI spells it."""
    return FINISH_REASONS.get(finish.finish_reason, finish.finish_reason)


def _filtered(finish: Finish) -> bool:
    """A finish OpenAI writes as ``content_filter`` rather than as an error."""
    failure = finish.failure
    return failure is None or failure.code is ErrorCode.CONTENT_FILTERED


def _frame(data: dict[str, Any]) -> bytes:
    """One ``data:`` line: the JSON holds no raw line break of any kind."""
    return f"data: {dumps_data(data)}\n\n".encode()


class OpenAIChunks:
    """``chat.completion.chunk`` frames: no ``id:`` or ``event:`` lines, ``[DONE]`` at the end.

    Tool calls are OpenAI's index-based deltas: a call's first delta carries ``id``, ``type``
    and ``function.name``; every delta carries an ``arguments`` piece, and concatenating them
    by index gives the call's JSON, whether the upstream sent each call whole or in fragments.

    A stream that fails after it began ends with ``data: {"error": {...}}`` and no ``[DONE]``:
    the SDK raises ``APIError`` on that frame, and a client that ignores it still does not mistake
    the answer for a complete one.

    Web search results keep the place the upstream gave them: a top-level ``web_search`` list on
    the chunk that carries the same upstream chunk's delta or finish, or on a chunk of its own
    (an empty delta) when that upstream chunk held nothing else.
    """

    def __init__(self, completion_id: str, model: str, created: int, include_usage: bool) -> None:
        self._head = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
        }
        self._include_usage = include_usage
        self._calls = ToolCalls()
        self._search: list[dict[str, Any]] | None = None  # rides on the next chunk

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        chunk: dict[str, Any] = {
            **self._head,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if self._include_usage:
            chunk["usage"] = None  # as OpenAI does: only the last chunk carries it
        if self._search is not None:
            chunk["web_search"], self._search = self._search, None
        return _frame(chunk)

    def opening(self) -> bytes | None:
        return self._chunk({"role": "assistant", "content": ""})

    def piece(self, piece: Piece) -> bytes:
        if isinstance(piece, TextPiece):
            return self._chunk({"content": piece.text})
        if isinstance(piece, ReasoningPiece):
            return self._chunk({"reasoning_content": piece.text})
        if isinstance(piece, ToolCallPiece):
            step = self._calls.add(piece.call)
            function: dict[str, Any] = {"arguments": step.arguments}
            call: dict[str, Any] = {"index": step.index}
            if step.first:
                call.update(id=step.id, type="function")
            if step.name is not None:
                function["name"] = step.name
            return self._chunk({"tool_calls": [{**call, "function": function}]})
        assert isinstance(piece, SearchPiece)
        self._search = piece.results
        return self._chunk({}) if piece.alone else b""

    def keepalive(self) -> bytes:
        return KEEPALIVE_FRAME

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        if not _filtered(finish):
            assert finish.failure is not None
            return self.error(finish.failure)
        frames = self._chunk({}, finish_reason(finish))
        if self._include_usage:
            frames += _frame({**self._head, "choices": [], "usage": priced(finish, outcome)})
        return frames + DONE_FRAME

    def error(self, error: RelayError) -> bytes:
        return _frame({"error": error_object(error)})


class CollectedAnswer:
    """A wire format that writes nothing and keeps the answer, for ``stream: false``."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.tool_calls = ToolCalls()
        self.web_search: list[dict[str, Any]] = []
        self.finish: Finish | None = None
        self.failure: RelayError | None = None
        self.usage: dict[str, Any] | None = None

    def opening(self) -> bytes | None:
        return None

    def piece(self, piece: Piece) -> bytes:
        if isinstance(piece, TextPiece):
            self.content.append(piece.text)
        elif isinstance(piece, ReasoningPiece):
            self.reasoning.append(piece.text)
        elif isinstance(piece, ToolCallPiece):
            self.tool_calls.add(piece.call)
        else:
            self.web_search.extend(piece.results)
        return b""

    def keepalive(self) -> bytes:
        return b""

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        self.usage = priced(finish, outcome)
        if _filtered(finish):
            self.finish = finish
        else:
            self.failure = finish.failure
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
            message["tool_calls"] = self.tool_calls.calls()
            message["content"] = message["content"] or None
        return message


def priced(finish: Finish, outcome: Outcome) -> dict[str, Any] | None:
    """The upstream's usage with the answer's cost (``cost``, in the deployment's currency, as
    OpenRouter reports it), when both are known."""
    if finish.usage is None or outcome.cost is None:
        return finish.usage
    return {**finish.usage, "cost": outcome.cost}


async def collect(session: ChatSession) -> CollectedAnswer:
    """Run the relay loop to its end (so quotas, history, logs and the journal settle as for a
    stream) and keep the answer: what a ``stream: false`` request is answered from."""
    answer = CollectedAnswer()
    await drain(session.body(answer))
    return answer


def answer_failure(failure: RelayError | None) -> RelayError:
    """What a non-streamed answer that did not end normally is answered with: the error it ended
    in, or ``internal_error`` when it never finished."""
    return failure or RelayError(ErrorCode.INTERNAL_ERROR, "the answer did not finish")


async def drain(body: RelayBody) -> None:
    """Read ``body`` to its end and close it, keeping nothing: its wire format keeps what the
    answer needs (a non-streamed answer is written from that)."""
    try:
        async for _ in body:
            pass
    finally:
        await body.aclose()
