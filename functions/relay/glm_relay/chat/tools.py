"""Tools on both sides of an answer: the ``tools`` a caller offers, the ``tool_calls`` of an
assistant turn in the history, and the calls a model makes, assembled from whatever shape the
upstream streamed them in (one complete delta, or ``tool_stream`` fragments)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from glm_relay.chat.request import bad, sendable, sendable_json
from glm_relay.errors import ErrorCode

MAX_TOOLS = 128
FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
INVALID = ErrorCode.INVALID_PARAMETER
UNSUPPORTED = ErrorCode.UNSUPPORTED_PARAMETER


def read_tools(value: Any) -> tuple[dict[str, Any], ...]:
    """``tools``: function, web_search and retrieval tools in Zhipu's shape (at most 128); a
    function keeps ``"strict": True`` when given (``strict: false`` is the default, dropped)."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise bad(INVALID, "tools must be a list", "tools")
    if len(value) > MAX_TOOLS:
        raise bad(INVALID, f"at most {MAX_TOOLS} tools are allowed", "tools")
    tools, names = [], set()
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "function":
            function = _function(tool.get("function"), where)
            if function["name"] in names:
                raise bad(
                    INVALID, f"{where}: function {function['name']!r} is given twice", "tools"
                )
            names.add(function["name"])
            tools.append({"type": "function", "function": function})
        elif kind == "web_search":
            config = tool.get("web_search", {})
            if not isinstance(config, dict):
                raise bad(INVALID, f"{where}.web_search must be an object", "tools")
            tools.append({"type": "web_search", "web_search": config})
        elif kind == "retrieval":
            config = tool.get("retrieval")
            if not isinstance(config, dict) or not isinstance(config.get("knowledge_id"), str):
                raise bad(INVALID, f"{where}.retrieval needs a knowledge_id string", "tools")
            tools.append({"type": "retrieval", "retrieval": config})
        elif isinstance(kind, str):
            raise bad(UNSUPPORTED, f"{where}: {kind[:32]!r} tools are not supported", "tools")
        else:
            raise bad(INVALID, f"{where} must be an object with a type", "tools")
    return tuple(tools)


def _function(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or not isinstance(value.get("name"), str):
        raise bad(INVALID, f"{where}.function needs a name", "tools")
    if not FUNCTION_NAME.match(value["name"]):
        raise bad(INVALID, f"{where}.function.name must be 1-64 letters, digits, _ or -", "tools")
    strict = value.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise bad(INVALID, f"{where}.function.strict must be a boolean", "tools")
    function: dict[str, Any] = {"name": value["name"]}
    description, parameters = value.get("description"), value.get("parameters")
    if description is not None:
        if not isinstance(description, str):
            raise bad(INVALID, f"{where}.function.description must be a string", "tools")
        function["description"] = sendable(description, f"{where}.function.description")
    if parameters is not None:
        if not isinstance(parameters, dict):
            raise bad(INVALID, f"{where}.function.parameters must be a JSON schema object", "tools")
        function["parameters"] = sendable_json(parameters, f"{where}.function.parameters", "tools")
    if strict:
        function["strict"] = True  # not sent: the relay checks the arguments (call_rules.py)
    known = ("name", "description", "parameters", "strict")
    unknown = sorted(k for k, v in value.items() if v is not None and k not in known)
    if unknown:
        raise bad(UNSUPPORTED, f"{where}.function.{unknown[0][:32]} is not supported", "tools")
    return function


def read_tool_calls(value: Any, where: str) -> list[dict[str, Any]]:
    """An assistant turn's ``tool_calls``: ``{id, type: function, function: {name, arguments}}``
    with ``arguments`` a JSON string (an object is encoded)."""
    if not isinstance(value, list):
        raise _invalid_messages(f"{where} must be a list")
    calls = []
    for index, call in enumerate(value):
        at = f"{where}[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(call.get("id"), str) or not call["id"]:
            raise _invalid_messages(f"{at} needs an id and a function")
        if call.get("type", "function") != "function":
            raise _invalid_messages(f"{at}.type must be function")
        name, arguments = function.get("name"), function.get("arguments", "")
        if not isinstance(name, str) or not name:
            raise _invalid_messages(f"{at}.function.name must be a non-empty string")
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments, ensure_ascii=False)
        if not isinstance(arguments, str):
            raise _invalid_messages(f"{at}.function.arguments must be a JSON string")
        sendable(arguments, f"{at}.function.arguments", code="invalid_messages")
        sendable(call["id"], f"{at}.id", code="invalid_messages")
        sendable(name, f"{at}.function.name", code="invalid_messages")
        calls.append(
            {
                "id": call["id"],
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
    return calls


def _invalid_messages(message: str) -> Exception:
    return bad(ErrorCode.INVALID_MESSAGES, message)


@dataclass(slots=True)
class CallDelta:
    """One step of a tool call, normalised: ``index`` counts calls from 0 in the order they
    began; ``id`` and ``name`` are set on a call's first step only; ``arguments`` is this step's
    text (concatenating every step's gives the call's JSON arguments)."""

    index: int
    id: str | None
    name: str | None
    arguments: str
    first: bool


@dataclass(slots=True)
class _Call:
    id: str
    name: str
    arguments: list[str] = field(default_factory=list)


class ToolCalls:
    """Assembles tool calls from upstream deltas of either shape.

    Zhipu sends each call whole in one delta, or (``tool_stream``) a head with ``id`` and
    ``name`` and then argument fragments, all keyed by ``index``. Fragments may repeat ``id``
    and ``name``; the last may ride on the finish chunk. Repeats are dropped here, so a client
    that concatenates deltas by index (as OpenAI's SDKs do) gets each value once.
    """

    def __init__(self) -> None:
        self._by_upstream: dict[Any, int] = {}
        self._calls: list[_Call] = []
        self._last: Any = None

    def add(self, delta: dict[str, Any]) -> CallDelta:
        """Fold one upstream ``tool_calls`` entry in; returns it normalised."""
        function: dict[str, Any] = delta.get("function") or {}
        if not isinstance(function, dict):
            function = {}
        key = delta.get("index")
        if key is None:  # no index: a new call if it has an id, else more of the last one
            key = self._last if self._last is not None and not delta.get("id") else len(self._calls)
        self._last = key
        name = function.get("name") or None
        first = key not in self._by_upstream
        if first:
            self._by_upstream[key] = len(self._calls)
            call_id = delta.get("id") or f"call_{len(self._calls)}"
            self._calls.append(_Call(str(call_id), ""))
        index = self._by_upstream[key]
        call = self._calls[index]
        if name is not None and call.name:
            name = None  # a repeat
        elif name is not None:
            call.name = str(name)
        arguments = function.get("arguments") or ""
        if not isinstance(arguments, str):
            arguments = json.dumps(arguments, ensure_ascii=False)
        call.arguments.append(arguments)
        return CallDelta(index, call.id if first else None, name, arguments, first)

    def calls(self) -> list[dict[str, Any]]:
        """The complete calls so far, in OpenAI's message shape."""
        return [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": "".join(call.arguments)},
            }
            for call in self._calls
        ]

    def __bool__(self) -> bool:
        return bool(self._calls)
