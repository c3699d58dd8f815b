"""Relay pieces as Anthropic's Messages stream, and as one ``message`` for ``stream: false``.

The stream, as Anthropic's SDKs and Claude Code parse it::

    message_start                         (usage: the estimated input tokens, 0 output)
    content_block_start / _delta* / _stop (per block: thinking, text, or tool_use)
    message_delta                         (stop_reason; usage: the upstream's real counts)
    message_stop

``ping`` is the keepalive. Blocks never overlap: a piece of another kind closes the open block
first. A thinking block ends with a ``signature_delta`` that seals its whole text
(``chat/sealed.py``); with ``display: "omitted"`` it carries no ``thinking_delta`` at all. A tool
call is a ``tool_use`` block whose ``input_json_delta`` pieces join to the call's JSON. A failure
after the stream began is one ``error`` event instead of ``message_delta`` / ``message_stop``:
every stream ends with exactly one ``message_stop`` or one ``error``.

Stop reasons: ``stop`` is ``end_turn``, ``tool_calls`` ``tool_use``, ``length`` ``max_tokens``,
``model_context_window_exceeded`` itself, and the content filter (``sensitive``) ``refusal``.
Zhipu does not say whether a stop sequence ended the answer, so ``stop_sequence`` is never set.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from glm_relay.chat.pieces import ReasoningPiece, TextPiece, ToolCallPiece
from glm_relay.chat.tools import ToolCalls
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.sse import SPLITLINES_ONLY, dumps_data
from glm_relay.web.anthropic.errors import error_event

if TYPE_CHECKING:
    from glm_relay.chat.pieces import Finish, Piece
    from glm_relay.chat.relay import Outcome

STOP_REASONS = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "length": "max_tokens",
    "model_context_window_exceeded": "model_context_window_exceeded",
    "sensitive": "refusal",
}
PING_FRAME = b'event: ping\ndata: {"type":"ping"}\n\n'
STOP_FRAME = b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
Seal = Callable[[str], str]


def stop_reason(finish: Finish) -> str:
    """The upstream's finish reason as Anthropic spells it."""
    return STOP_REASONS.get(finish.finish_reason, "end_turn")


def ended_normally(finish: Finish) -> bool:
    """A finish written as a stop reason (a content filter is ``refusal``), not as an error."""
    return finish.failure is None or finish.failure.code is ErrorCode.CONTENT_FILTERED


def usage(
    finish_usage: dict[str, Any] | None, input_estimate: int, cost: float | None = None
) -> dict[str, Any]:
    """Zhipu's usage in Anthropic's terms: cached prompt tokens are cache reads, not input;
    with the answer's ``cost`` (in ``CURRENCY``) when it is known (an extra field: the SDK
    keeps it)."""
    if not finish_usage:
        return {"input_tokens": input_estimate, "output_tokens": 0}
    cached = (finish_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return {
        "input_tokens": max(int(finish_usage.get("prompt_tokens") or 0) - cached, 0),
        "output_tokens": int(finish_usage.get("completion_tokens") or 0),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        **({} if cost is None else {"cost": cost}),
    }


def message_head(message_id: str, model: str) -> dict[str, Any]:
    """What every message object starts with."""
    return {"id": message_id, "type": "message", "role": "assistant", "model": model}


def _event(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {dumps_data(data)}\n\n".encode()


class MessageStream:
    """The ``WireFormat`` of a streamed ``/v1/messages`` answer: a small state machine over the
    open block (``None``, ``"thinking"``, ``"text"`` or ``"tool_use"``) and its index."""

    def __init__(
        self,
        message_id: str,
        model: str,
        input_estimate: int,
        seal: Seal,
        *,
        show_thinking: bool = True,
    ) -> None:
        self._head = message_head(message_id, model)
        self._input_estimate = input_estimate
        self._seal = seal
        self._show_thinking = show_thinking
        self._open: str | None = None
        self._index = -1
        self._reasoning: list[str] = []
        self._calls = ToolCalls()
        self._call_index = -1  # the call the open tool_use block holds

    def opening(self) -> bytes | None:
        message = {
            **self._head,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage(None, self._input_estimate),
        }
        return _event("message_start", {"type": "message_start", "message": message})

    def piece(self, piece: Piece) -> bytes:
        if isinstance(piece, TextPiece):
            head = b"" if self._open == "text" else self._start({"type": "text", "text": ""})
            literal = piece.literal
            if literal is None or any(sep in literal for sep in SPLITLINES_ONLY):
                literal = dumps_data(piece.text)
            # The upstream's JSON string is valid JSON as it is: no decode, no re-encode.
            return head + (
                b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,'
                b'"delta":{"type":"text_delta","text":%s}}\n\n' % (self._index, literal.encode())
            )
        if isinstance(piece, ReasoningPiece):
            head = b""
            if self._open != "thinking":
                head = self._start({"type": "thinking", "thinking": "", "signature": ""})
            self._reasoning.append(piece.text)
            if not self._show_thinking:
                return head
            return head + self._delta({"type": "thinking_delta", "thinking": piece.text})
        if isinstance(piece, ToolCallPiece):
            return self._tool_call(piece.call)
        return b""  # web search results: only Zhipu's own search tool makes them, never sent here

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        step = self._calls.add(call)
        head = b""
        if step.first:
            name = step.name or ""
            head = self._start({"type": "tool_use", "id": step.id, "name": name, "input": {}})
            self._call_index = step.index
        elif self._open != "tool_use" or step.index != self._call_index:
            # Anthropic's blocks cannot interleave; Zhipu streams one call after another.
            raise RelayError(
                ErrorCode.UPSTREAM_PROTOCOL_ERROR, "the upstream interleaved two tool calls"
            )
        if not step.arguments:
            return head
        return head + self._delta({"type": "input_json_delta", "partial_json": step.arguments})

    def keepalive(self) -> bytes:
        return PING_FRAME

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        if not ended_normally(finish):
            assert finish.failure is not None
            return self.error(finish.failure)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason(finish), "stop_sequence": None},
            "usage": usage(finish.usage, self._input_estimate, outcome.cost),
        }
        return self._close() + _event("message_delta", delta) + STOP_FRAME

    def error(self, error: RelayError) -> bytes:
        return error_event(error)

    def _start(self, block: dict[str, Any]) -> bytes:
        frames = self._close()
        self._index += 1
        self._open = block["type"]
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return frames + _event("content_block_start", start)

    def _delta(self, delta: dict[str, Any]) -> bytes:
        data = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return _event("content_block_delta", data)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        frames = b""
        if self._open == "thinking":
            signature = self._seal("".join(self._reasoning))
            self._reasoning = []
            frames = self._delta({"type": "signature_delta", "signature": signature})
        self._open = None
        stop = {"type": "content_block_stop", "index": self._index}
        return frames + _event("content_block_stop", stop)


def whole_message(
    head: dict[str, Any],
    *,
    reasoning: str,
    text: str,
    calls: list[dict[str, Any]],
    finish: Finish,
    input_estimate: int,
    seal: Seal,
    show_thinking: bool,
    cost: float | None = None,
) -> dict[str, Any]:
    """The ``message`` of a ``stream: false`` answer: thinking, text and tool_use blocks in
    the order a stream would have sent them."""
    content: list[dict[str, Any]] = []
    if reasoning:
        shown = reasoning if show_thinking else ""
        content.append({"type": "thinking", "thinking": shown, "signature": seal(reasoning)})
    if text or not calls:
        content.append({"type": "text", "text": text})
    for call in calls:
        function = call["function"]
        try:
            arguments = json.loads(function["arguments"] or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            raise RelayError(
                ErrorCode.UPSTREAM_PROTOCOL_ERROR,
                f"the model's call of {function['name'][:64]!r} has arguments that are not a "
                "JSON object",
            )
        content.append(
            {"type": "tool_use", "id": call["id"], "name": function["name"], "input": arguments}
        )
    return {
        **head,
        "content": content,
        "stop_reason": stop_reason(finish),
        "stop_sequence": None,
        "usage": usage(finish.usage, input_estimate, cost),
    }
