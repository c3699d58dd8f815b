"""The tool-call settings Zhipu lacks, enforced on the answer: ``parallel_tool_calls: false``
and ``strict`` functions.

Zhipu always lets the model call several functions at once and has no strict mode, so the relay
keeps the promise on the way back, for every front end alike (it sits between the upstream
stream and the wire format):

- ``parallel_tool_calls: false``: the first call is passed on, whole or in fragments; the pieces
  of any later call are dropped (the answer still ends with ``tool_calls``; the upstream's usage,
  which counts them, is passed as is).
- a ``strict`` function: once the answer ends, the arguments of each of its calls must parse as a
  JSON object. If they do not, the answer ends with ``tool_arguments_invalid`` instead of its
  finish, so invalid JSON is never passed off as a finished call. The schema itself is not
  checked (a client validates; pydantic-ai and instructor ask again with the error). An answer
  cut by ``length`` ends as such: its finish already says the arguments are incomplete.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import replace
from typing import TYPE_CHECKING

from glm_relay.chat.pieces import Finish, Piece, ToolCallPiece
from glm_relay.chat.tools import ToolCalls
from glm_relay.errors import ErrorCode, RelayError

if TYPE_CHECKING:
    from glm_relay.chat.pieces import AnswerStream
    from glm_relay.chat.request import ChatRequest

CUT_SHORT = frozenset({"length", "model_context_window_exceeded"})


def with_call_rules(upstream: AnswerStream, chat: ChatRequest) -> AnswerStream:
    """``upstream`` itself when the request sets no rule (the common path pays nothing), else
    the stream with the rules applied."""
    strict = frozenset(
        tool["function"]["name"]
        for tool in chat.tools
        if tool["type"] == "function" and tool["function"].get("strict")
    )
    if chat.parallel_tool_calls and not strict:
        return upstream
    return RuledStream(upstream, single=not chat.parallel_tool_calls, strict=strict)


class RuledStream:
    """An ``AnswerStream`` that passes its source's pieces on, minus the calls after the first
    (``single``), and fails the finish of an answer whose ``strict`` calls are not JSON objects."""

    def __init__(self, source: AnswerStream, *, single: bool, strict: frozenset[str]) -> None:
        self._source = source
        self._single = single
        self._strict = strict
        self._calls = ToolCalls()
        self.attempts = source.attempts

    async def read(self) -> bytes:
        return await self._source.read()

    def parse(self, data: bytes) -> Iterable[Piece | Finish]:
        return self._ruled(self._source.parse(data))

    def _ruled(self, pieces: Iterable[Piece | Finish]) -> Iterator[Piece | Finish]:
        for piece in pieces:
            if isinstance(piece, ToolCallPiece):
                if self._calls.add(piece.call).index > 0 and self._single:
                    continue
            elif isinstance(piece, Finish):
                piece = self._checked(piece)
            yield piece

    def _checked(self, finish: Finish) -> Finish:
        if finish.failure is not None or finish.finish_reason in CUT_SHORT or not self._strict:
            return finish
        calls = self._calls.calls()
        for call in calls[:1] if self._single else calls:
            function = call["function"]
            if function["name"] in self._strict and not _json_object(function["arguments"]):
                failure = RelayError(
                    ErrorCode.TOOL_ARGUMENTS_INVALID,
                    f"the model's arguments for the strict function {function['name']!r} are "
                    "not a JSON object",
                )
                return replace(finish, failure=failure)
        return finish

    async def aclose(self) -> None:
        await self._source.aclose()


def _json_object(arguments: str) -> bool:
    try:
        return isinstance(json.loads(arguments), dict)
    except (ValueError, RecursionError):
        return False
