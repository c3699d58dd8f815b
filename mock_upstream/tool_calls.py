"""The tool calls of an answer: which calls the model makes, and the pieces they are sent as.

`tools` decides which functions a prompt calls and fills their arguments; this module turns that
into the calls of one answer (ids, indexes) and cuts them into pieces: one piece with every
complete call, or with `tool_stream` a head per call followed by its argument fragments.
"""

from __future__ import annotations

import json
from typing import Any

from mock_upstream import directives as directives_mod
from mock_upstream import tools
from mock_upstream.catalogue import ModelSpec
from mock_upstream.pieces import Piece
from mock_upstream.prompt import count_tokens, split_tokens
from mock_upstream.words import seed_of


def _last_role(body: dict[str, Any]) -> str | None:
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict):
        role = messages[-1].get("role")
        return role if isinstance(role, str) else None
    return None


def calls_for(
    body: dict[str, Any], parsed: directives_mod.Directives, text: str, shapes: set[str]
) -> list[dict[str, Any]]:
    """The complete calls the model makes (see `tools`), or none."""
    functions = tools.function_tools(body)
    if parsed.tools == (directives_mod.NO_TOOL,):
        chosen: list[dict[str, Any] | None] = []
    elif parsed.tools:
        try:
            chosen = list(tools.select(functions, parsed.tools))
        except ValueError as exc:
            raise directives_mod.DirectiveError(str(exc)) from None
    else:
        chosen = list(tools.mentioned(functions, text))
    if _last_role(body) != "user":
        chosen = []
    if not chosen and parsed.tools != (directives_mod.NO_TOOL,):
        demand = tools.demanded(body, functions)
        chosen = [] if demand is None else [demand]
    if not chosen and "tool_call" in shapes:
        chosen = [functions[0] if functions else None]
    seed = seed_of(text)
    calls = []
    for index, function in enumerate(chosen):
        name = tools.DEFAULT_TOOL_NAME if function is None else function["name"]
        arguments = _arguments(function, text, parsed)
        if "truncated" in parsed.tool_frames:
            arguments = arguments[:-1]  # a model that stopped in the middle of its JSON
        calls.append(
            {
                "id": tools.call_id(seed, index, name),
                "index": index,
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
    return calls


def _arguments(
    function: dict[str, Any] | None, text: str, parsed: directives_mod.Directives
) -> str:
    """The call's JSON arguments, with `#args` values written over the filled ones."""
    arguments = tools.arguments_for(function, text)
    if not parsed.args:
        return arguments
    return json.dumps({**json.loads(arguments), **dict(parsed.args)}, ensure_ascii=False)


def call_pieces(
    calls: list[dict[str, Any]], streamed: bool, styles: tuple[str, ...] = ()
) -> list[Piece]:
    """One piece with every complete call, or with `tool_stream` per call a head (id, type,
    name) and one piece per token of the arguments (`split_tokens`), carrying index only.

    `#tool_frames` varies what the docs leave open: `repeat` puts id, type and name on every
    fragment too; `on_finish` sends the last fragment on the finish chunk."""
    if not streamed:
        tokens = sum(
            count_tokens(c["function"]["name"]) + count_tokens(c["function"]["arguments"])
            for c in calls
        )
        return [Piece("tool_call", tool_calls=tuple(calls), tokens=tokens)]
    pieces = []
    for call in calls:
        name = call["function"]["name"]
        head = {"id": call["id"], "index": call["index"], "type": "function"}
        head["function"] = {"name": name}
        pieces.append(Piece("tool_call", tool_calls=(head,), tokens=count_tokens(name)))
        for fragment in split_tokens(call["function"]["arguments"]):
            delta: dict[str, Any] = {"index": call["index"], "function": {"arguments": fragment}}
            if "repeat" in styles:
                delta = {**head, "function": {"name": name, "arguments": fragment}}
            pieces.append(Piece("tool_call", tool_calls=(delta,)))
    if "on_finish" in styles and len(pieces) > 1:
        last = pieces[-1]
        pieces[-1] = Piece("tool_call", tool_calls=last.tool_calls, on_finish=True)
    return pieces


def tool_stream_on(body: dict[str, Any], spec: ModelSpec) -> bool:
    """`tool_stream: true` on a model that streams arguments (GLM-4.6 and later); older models
    accept the field and send whole calls."""
    return body.get("tool_stream") is True and body.get("stream") is True and spec.tool_stream
