"""Relay pieces as Responses API stream events: a state machine over output items.

The answer is a list of output items, each opened with ``response.output_item.added`` and
closed with ``response.output_item.done`` carrying the whole item, in the order the pieces come:

- reasoning pieces: a ``reasoning`` item whose one summary part is the reasoning text
  (``reasoning_summary_part.added``, ``reasoning_summary_text.delta`` ... ``.done``,
  ``reasoning_summary_part.done``), with ``encrypted_content`` (the sealed reasoning) when asked;
- text pieces: a ``message`` item with one ``output_text`` part (``content_part.added``,
  ``output_text.delta`` ... ``.done``, ``content_part.done``);
- tool calls: a ``function_call`` item per call, its arguments streamed as
  ``function_call_arguments.delta`` then ``.done``; a call to a custom or shell tool is a
  ``custom_tool_call`` / ``local_shell_call`` item given whole when the call ends;
- web search results: a ``web_search_call`` item with the sources.

The stream opens with ``response.created`` and ``response.in_progress`` and ends with exactly one
of ``response.completed`` (with usage), ``response.incomplete`` (the output cap, or the upstream's
content filter) or ``response.failed`` (with the relay's error code). Every event carries a
``sequence_number`` from 0; frames are ``event:`` and ``data:`` lines, no ``id:`` lines (a
reconnect names the request id and a count of events, as on ``/v1``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_relay.chat.pieces import ReasoningPiece, SearchPiece, TextPiece, ToolCallPiece
from glm_relay.chat.tools import ToolCalls
from glm_relay.errors import ErrorCode
from glm_relay.sse import KEEPALIVE_FRAME, SPLITLINES_ONLY, dumps_data
from glm_relay.web.responses.objects import ResponseHead, usage_object
from glm_relay.web.responses.tools import ToolNames, call_item, streams_arguments

if TYPE_CHECKING:
    from glm_relay.chat.pieces import Finish, Piece
    from glm_relay.chat.relay import Outcome
    from glm_relay.chat.sealed import ReasoningSeal
    from glm_relay.errors import RelayError

CUT_SHORT = frozenset({"length", "model_context_window_exceeded"})
TEXT_DELTA = "response.output_text.delta"


class _Call:
    __slots__ = ("arguments", "call_id", "index", "item_id", "name", "opened", "streamed")

    def __init__(self, call_id: str) -> None:
        self.call_id = call_id
        self.name = ""
        self.arguments: list[str] = []
        self.index = -1
        self.item_id = ""
        self.opened = False
        self.streamed = False


class ResponsesEvents:
    """The wire format of ``POST /v1/responses`` (``chat.relay.WireFormat``).

    After the terminal event, ``response`` is the final Response object and ``turn`` the
    assistant message (Chat Completions shape, with ``reasoning_content``) a follow-up replays.
    """

    def __init__(self, head: ResponseHead, names: ToolNames, seal: ReasoningSeal | None) -> None:
        self._head = head
        self._names = names
        self._seal = seal
        self._seq = 0
        self.output: list[dict[str, Any]] = []
        self._open: str | None = None  # "reasoning", "message" or "call"
        self._parts: list[str] = []  # the open reasoning or message item's text
        self._item_id = ""
        self._index = -1
        self._delta_head = ""  # the open item's delta frame up to the delta itself
        self._calls = ToolCalls()
        self._by_index: list[_Call] = []
        self._call: _Call | None = None
        self._reasoning: list[str] = []
        self._text: list[str] = []
        self.response: dict[str, Any] | None = None
        self.failure: RelayError | None = None
        self.turn: dict[str, Any] | None = None

    # -- framing ---------------------------------------------------------------------------
    def _event(self, kind: str, data: dict[str, Any]) -> str:
        data["type"] = kind
        data["sequence_number"] = self._seq
        self._seq += 1
        return f"event: {kind}\ndata: {dumps_data(data)}\n\n"

    def _item_event(self, kind: str, **data: Any) -> str:
        return self._event(kind, {"item_id": self._item_id, "output_index": self._index, **data})

    def _raw(self, kind: str, fields: str) -> str:
        """An event whose fields are already JSON text (the first token's events: no encoder)."""
        seq = self._seq
        self._seq = seq + 1
        return f'event: {kind}\ndata: {{"type":"{kind}",{fields},"sequence_number":{seq}}}\n\n'

    # -- the wire format -------------------------------------------------------------------
    def opening(self) -> bytes | None:
        snapshot = '"response":' + dumps_data(self._head.response("in_progress", []))
        created = self._raw("response.created", snapshot)
        return (created + self._raw("response.in_progress", snapshot)).encode()

    def piece(self, piece: Piece) -> bytes:
        if isinstance(piece, TextPiece):
            if self._open != "message":
                return (self._close() + self._open_message()).encode() + self._text_delta(piece)
            return self._text_delta(piece)
        if isinstance(piece, ReasoningPiece):
            out = "" if self._open == "reasoning" else self._close() + self._open_reasoning()
            text = piece.text
            self._parts.append(text)
            self._reasoning.append(text)
            seq = self._seq
            self._seq = seq + 1
            tail = f',"sequence_number":{seq}}}\n\n'
            return (out + self._delta_head + dumps_data(text) + tail).encode()
        if isinstance(piece, ToolCallPiece):
            return self._tool_call(piece.call).encode()
        assert isinstance(piece, SearchPiece)
        return (self._close() + self._search(piece.results)).encode()

    def keepalive(self) -> bytes:
        return KEEPALIVE_FRAME

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        failure = finish.failure
        if failure is not None and failure.code is not ErrorCode.CONTENT_FILTERED:
            return self.error(failure)
        cut = failure is not None or finish.finish_reason in CUT_SHORT
        out = self._close(incomplete=cut)
        usage = usage_object(finish.usage, outcome.cost)
        self._remember_turn()
        if cut:
            reason = "content_filter" if failure is not None else "max_output_tokens"
            response = self._head.response(
                "incomplete", self.output, usage=usage, incomplete_details={"reason": reason}
            )
            kind = "response.incomplete"
        else:
            response = self._head.response("completed", self.output, usage=usage)
            kind = "response.completed"
        self.response = response
        return (out + self._event(kind, {"response": response})).encode()

    def error(self, error: RelayError) -> bytes:
        self.failure = error
        out = self._close(incomplete=True)  # what was written stays, marked incomplete
        failure = {"code": error.code.value, "message": error.message}
        response = self._head.response("failed", self.output, error=failure)
        self.response = response
        return (out + self._event("response.failed", {"response": response})).encode()

    # -- items -----------------------------------------------------------------------------
    def _new_item(self, prefix: str, item: dict[str, Any]) -> str:
        self._index = len(self.output)
        self._item_id = item["id"] = f"{prefix}_{self._head.token}{self._index:03d}"
        self.output.append(item)
        return self._event(
            "response.output_item.added", {"output_index": self._index, "item": dict(item)}
        )

    def _item_done(self, item: dict[str, Any]) -> str:
        self.output[self._index] = item
        return self._event("response.output_item.done", {"output_index": self._index, "item": item})

    def _open_reasoning(self) -> str:
        self._open, self._parts = "reasoning", []
        out = self._new_item("rs", {"type": "reasoning", "summary": []})
        kind = "response.reasoning_summary_text.delta"
        self._delta_head = (
            f'event: {kind}\ndata: {{"type":"{kind}","item_id":"{self._item_id}",'
            f'"output_index":{self._index},"summary_index":0,"delta":'
        )
        part = {"type": "summary_text", "text": ""}
        return out + self._item_event(
            "response.reasoning_summary_part.added", summary_index=0, part=part
        )

    def _open_message(self) -> str:
        """The message item and its text part, written from templates (the item id is ASCII
        letters, digits, ``_`` and ``-``): they stand between the upstream's first token and
        the client's."""
        self._open, self._parts = "message", []
        index = self._index = len(self.output)
        item_id = self._item_id = f"msg_{self._head.token}{index:03d}"
        self.output.append({"id": item_id, "type": "message"})
        where = f'"item_id":"{item_id}","output_index":{index}'
        self._delta_head = (
            f'event: {TEXT_DELTA}\ndata: {{"type":"{TEXT_DELTA}",{where},"content_index":0,"delta":'
        )
        item = (
            f'"output_index":{index},"item":{{"id":"{item_id}","type":"message",'
            '"status":"in_progress","role":"assistant","content":[]}'
        )
        part = '"content_index":0,"part":{"type":"output_text","text":"","annotations":[]}'
        added = self._raw("response.output_item.added", item)
        return added + self._raw("response.content_part.added", f"{where},{part}")

    def _text_delta(self, piece: TextPiece) -> bytes:
        """The hot path: one frame per text piece, the upstream's JSON literal reused."""
        text = piece.text
        self._parts.append(text)
        self._text.append(text)
        literal = piece.literal
        if literal is None or any(sep in literal for sep in SPLITLINES_ONLY):
            literal = dumps_data(text)
        seq = self._seq
        self._seq = seq + 1
        tail = f',"logprobs":[],"sequence_number":{seq}}}\n\n'
        return (self._delta_head + literal + tail).encode()

    def _close(self, *, incomplete: bool = False) -> str:
        """The events that close the open item (none when no item is open)."""
        kind, self._open = self._open, None
        if kind == "reasoning":
            text = "".join(self._parts)
            part: dict[str, Any] = {"type": "summary_text", "text": text}
            out = self._item_event(
                "response.reasoning_summary_text.done", summary_index=0, text=text
            )
            out += self._item_event(
                "response.reasoning_summary_part.done", summary_index=0, part=part
            )
            item: dict[str, Any] = {"id": self._item_id, "type": "reasoning", "summary": [part]}
            if self._seal is not None:
                item["encrypted_content"] = self._seal.seal(self._head.model, text)
            return out + self._item_done(item)
        if kind == "message":
            text = "".join(self._parts)
            part = {"type": "output_text", "text": text, "annotations": []}
            out = self._item_event(
                "response.output_text.done", content_index=0, text=text, logprobs=[]
            )
            out += self._item_event("response.content_part.done", content_index=0, part=part)
            item = {
                "id": self._item_id,
                "type": "message",
                "status": "incomplete" if incomplete else "completed",
                "role": "assistant",
                "content": [part],
            }
            return out + self._item_done(item)
        if kind == "call":
            return self._close_call(incomplete)
        return ""

    def _tool_call(self, delta: dict[str, Any]) -> str:
        step = self._calls.add(delta)
        out = ""
        if step.first:
            out = self._close()
            self._call = _Call(step.id or f"call_{step.index}")
            self._by_index.append(self._call)
            self._open = "call"
        call = self._by_index[step.index]
        if step.name is not None:
            call.name = step.name
        call.arguments.append(step.arguments)
        if not call.opened and call.name:
            out += self._open_call(call)
        elif call.opened and call.streamed and step.arguments:
            out += self._item_event("response.function_call_arguments.delta", delta=step.arguments)
        return out

    def _open_call(self, call: _Call) -> str:
        call.opened = True
        call.streamed = streams_arguments(call.name, self._names)
        if not call.streamed:
            return ""  # given whole when it ends
        item = call_item("", call.call_id, call.name, "", self._names)
        item["status"] = "in_progress"
        out = self._new_item("fc", item)
        call.index, call.item_id = self._index, self._item_id
        arguments = "".join(call.arguments)
        if arguments:
            out += self._item_event("response.function_call_arguments.delta", delta=arguments)
        return out

    def _close_call(self, incomplete: bool) -> str:
        call, self._call = self._call, None
        assert call is not None
        arguments = "".join(call.arguments)
        out = ""
        if not call.opened or not call.streamed:
            call.streamed = False
            kind = self._names.client(call.name).kind
            prefix = {"custom": "ctc", "local_shell": "lsh"}.get(kind, "fc")
            out = self._new_item(
                prefix, call_item("", call.call_id, call.name, arguments, self._names)
            )
        else:
            out = self._item_event(
                "response.function_call_arguments.done", arguments=arguments, name=call.name
            )
        item = call_item(self._item_id, call.call_id, call.name, arguments, self._names)
        if incomplete:
            item["status"] = "incomplete"
        return out + self._item_done(item)

    def _search(self, results: list[dict[str, Any]]) -> str:
        sources = [
            {"type": "url", "url": r.get("link") or "", "title": r.get("title") or ""}
            for r in results
            if isinstance(r, dict)
        ]
        item = {"type": "web_search_call", "status": "completed"}
        out = self._new_item("ws", item)
        done = {
            "id": self._item_id,
            "type": "web_search_call",
            "status": "completed",
            "action": {"type": "search", "query": "", "sources": sources},
        }
        return out + self._item_done(done)

    def _remember_turn(self) -> None:
        turn: dict[str, Any] = {"role": "assistant", "content": "".join(self._text)}
        if self._reasoning:
            turn["reasoning_content"] = "".join(self._reasoning)
        if self._calls:
            turn["tool_calls"] = self._calls.calls()
        self.turn = turn
