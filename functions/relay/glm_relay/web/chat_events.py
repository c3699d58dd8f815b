"""The relay's own SSE events, as ``/chat`` sends them (``EventSource`` reads them directly).

An answer is ``meta``, then ``reasoning`` / ``chat`` / ``tool_call_delta`` / ``tool_call`` /
``search`` in upstream order, then exactly one ``done`` or ``error``. Every event carries
``id: <request-id>:<n>``, so a browser that reconnects says which answer it already has.

Tool calls: ``tool_call`` always carries one complete call ``{index, id, type, function: {name,
arguments}}``. When the arguments were streamed (``tool_stream``), each fragment comes first as
``tool_call_delta`` ``{index, id?, name?, arguments}`` (``id`` and ``name`` on a call's first
delta only; concatenating ``arguments`` by index gives the JSON), and the complete calls follow
as ``tool_call`` events just before ``done``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_relay.chat.pieces import ReasoningPiece, TextPiece, ToolCallPiece
from glm_relay.chat.search import source_list
from glm_relay.chat.tools import ToolCalls
from glm_relay.sse import KEEPALIVE_FRAME, SPLITLINES_ONLY, dumps_data, encode_event

if TYPE_CHECKING:
    from glm_relay.chat.pieces import Finish, Piece
    from glm_relay.chat.relay import Outcome
    from glm_relay.errors import RelayError


class EventFramer:
    """Numbers events ``<request-id>:<n>`` and encodes their JSON data."""

    __slots__ = ("_count", "_prefix")

    def __init__(self, request_id: str) -> None:
        self._prefix = request_id + ":"
        self._count = 0

    def frame(self, event: str, data: dict[str, Any]) -> bytes:
        return self.frame_json(event, dumps_data(data))

    def frame_json(self, event: str, payload: str) -> bytes:
        """A frame whose data is already JSON (``encode_event`` knows the framing)."""
        self._count += 1
        return encode_event(event, payload, self._prefix + str(self._count))


class RelayEvents:
    """The ``WireFormat`` of ``/chat``."""

    def __init__(self, request_id: str, meta: dict[str, Any], *, tool_stream: bool = False) -> None:
        self._framer = EventFramer(request_id)
        self._meta = meta
        self._tool_stream = tool_stream
        self._calls = ToolCalls()

    def opening(self) -> bytes | None:
        return self._framer.frame("meta", self._meta)

    def piece(self, piece: Piece) -> bytes:
        if isinstance(piece, TextPiece):
            literal = piece.literal
            if literal is not None and not any(sep in literal for sep in SPLITLINES_ONLY):
                # The upstream's JSON string is already valid JSON: no decode, no re-encode.
                return self._framer.frame_json("chat", '{"content":' + literal + "}")
            return self._framer.frame("chat", {"content": piece.text})
        if isinstance(piece, ReasoningPiece):
            return self._framer.frame("reasoning", {"content": piece.text})
        if isinstance(piece, ToolCallPiece):
            return self._tool_call(piece.call)
        return self._framer.frame("search", {"results": source_list(piece.results)})

    def keepalive(self) -> bytes:
        return KEEPALIVE_FRAME

    def _tool_call(self, call: dict[str, Any]) -> bytes:
        step = self._calls.add(call)
        if not self._tool_stream:
            whole = self._calls.calls()[step.index]
            return self._framer.frame("tool_call", {"index": step.index, **whole})
        delta: dict[str, Any] = {"index": step.index}
        if step.id is not None:
            delta["id"] = step.id
        if step.name is not None:
            delta["name"] = step.name
        delta["arguments"] = step.arguments
        return self._framer.frame("tool_call_delta", delta)

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        if finish.failure is not None:
            return self.error(finish.failure)
        calls = b""
        if self._tool_stream:
            for index, call in enumerate(self._calls.calls()):
                calls += self._framer.frame("tool_call", {"index": index, **call})
        return calls + self._framer.frame(
            "done",
            {
                "finish_reason": finish.finish_reason,
                "usage": finish.usage,
                "model": finish.model or outcome.model,
                "upstream_id": finish.upstream_id,
                **(
                    {"cost": outcome.cost, "currency": outcome.currency}
                    if outcome.cost is not None
                    else {}
                ),
            },
        )

    def error(self, error: RelayError) -> bytes:
        return self._framer.frame("error", error.event_data())


def error_event(request_id: str, error: RelayError) -> bytes:
    """A lone terminal ``error`` event, numbered as a streamed answer's would be."""
    return EventFramer(request_id).frame("error", error.event_data())
