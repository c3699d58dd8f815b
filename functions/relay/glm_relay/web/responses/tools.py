"""The Responses API's tools as Zhipu's, and the model's calls back as the items clients expect.

Zhipu takes function, web_search and retrieval tools only (anything else is "type is illegal"),
so every other kind a client sends is translated or dropped here, never sent:

- ``function``: a function tool (``strict`` kept: the chat core handles it);
- ``namespace`` (Codex): each function inside becomes a function named ``<namespace>__<name>``
  (a hashed name when that is not a valid function name or another tool has it), its
  description led by the namespace's; its calls come back as ``function_call`` items with the
  original ``name`` and ``namespace``;
- ``custom`` (free-form input, optionally a grammar): a function taking one string ``input``,
  the grammar given to the model in the description; calls come back as ``custom_tool_call``;
- ``local_shell``: a function ``local_shell`` taking ``command`` (argv), ``workdir`` and
  ``timeout_ms``; calls come back as ``local_shell_call`` items with an ``exec`` action;
- ``web_search`` / ``web_search_preview``: the relay's Zhipu web search tool (``chat/search.py``),
  except with ``external_web_access: false`` (Codex's default): Zhipu's search always reaches the
  live web, so the tool is left out, as the caller asked for no live access;
- any other kind (``file_search``, ``code_interpreter``, ``computer_use_preview``,
  ``image_generation``, ``mcp``, ...): hosted tools the relay cannot run are left out.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from glm_relay.chat.request import bad
from glm_relay.chat.search import search_tool
from glm_relay.chat.tools import FUNCTION_NAME
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode

INVALID = ErrorCode.INVALID_PARAMETER
SEARCH_KINDS = frozenset({"web_search", "web_search_preview", "web_search_2025_08_26"})
LOCAL_SHELL = "local_shell"
LOCAL_SHELL_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "command": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The command and its arguments, as an argv list.",
        },
        "workdir": {"type": "string", "description": "The working directory."},
        "timeout_ms": {"type": "integer", "description": "A time limit in milliseconds."},
    },
    "required": ["command"],
}
FUNCTION_KEYS = ("name", "description", "parameters", "strict")


@dataclass(frozen=True, slots=True)
class ClientTool:
    """A tool as the client named it: its kind (function, custom, local_shell) and namespace."""

    kind: str
    name: str
    namespace: str | None = None


@dataclass(slots=True)
class ToolNames:
    """The function names sent upstream and the client tools they stand for, both ways."""

    _by_chat: dict[str, ClientTool] = field(default_factory=dict)
    _to_chat: dict[ClientTool, str] = field(default_factory=dict)

    def add(self, tool: ClientTool, where: str) -> str:
        """The upstream function name for ``tool``: the client's name when it is a valid one
        that no earlier tool took (a flattened namespace may collide), else a hashed one. The
        same tool given twice is ``invalid_parameter``, as on ``/v1``."""
        if tool in self._to_chat:
            label = tool.name if tool.namespace is None else f"{tool.namespace}.{tool.name}"
            message = f"{where}: the {tool.kind} tool {label[:130]!r} is given twice"
            raise bad(INVALID, message, "tools")
        name = tool.name if tool.namespace is None else f"{tool.namespace}__{tool.name}"
        salt = 0
        while not FUNCTION_NAME.match(name) or name in self._by_chat:
            seed = f"{tool.namespace}/{tool.name}" + (f"#{salt}" if salt else "")
            digest = hashlib.sha256(seed.encode()).hexdigest()[:10]
            stem = "".join(
                c if c.isascii() and (c.isalnum() or c in "_-") else "_" for c in tool.name
            )
            name, salt = f"{stem[:50]}_{digest}", salt + 1
        self._by_chat[name] = tool
        self._to_chat[tool] = name
        return name

    def client(self, chat_name: str) -> ClientTool:
        """The client tool an upstream call names (an unknown name is a plain function)."""
        return self._by_chat.get(chat_name) or ClientTool("function", chat_name)

    def chat(self, tool: ClientTool) -> str:
        """The upstream name of a client tool (its own name when the request did not offer it)."""
        found = self._to_chat.get(tool)
        if found is not None:
            return found
        return tool.name if tool.namespace is None else f"{tool.namespace}__{tool.name}"


def translate_tools(value: Any, settings: Settings) -> tuple[list[dict[str, Any]], ToolNames]:
    """``tools`` in Chat Completions' shape (for ``chat/options.py``) and the name map."""
    names = ToolNames()
    if value is None:
        return [], names
    if not isinstance(value, list):
        raise bad(INVALID, "tools must be a list", "tools")
    out: list[dict[str, Any]] = []
    for index, tool in enumerate(value):
        where = f"tools[{index}]"
        kind = tool.get("type") if isinstance(tool, dict) else None
        if not isinstance(kind, str):
            raise bad(INVALID, f"{where} must be an object with a type", "tools")
        assert isinstance(tool, dict)
        if kind == "function":
            out.append(
                _function(tool, names.add(ClientTool("function", _name(tool, where)), where))
            )
        elif kind == "namespace":
            out.extend(_namespace(tool, where, names))
        elif kind == "custom":
            out.append(_custom(tool, names.add(ClientTool("custom", _name(tool, where)), where)))
        elif kind == LOCAL_SHELL:
            chat_name = names.add(ClientTool(LOCAL_SHELL, LOCAL_SHELL), where)
            out.append(_as_function(chat_name, "Run a command on the user's machine.", None))
            out[-1]["function"]["parameters"] = LOCAL_SHELL_PARAMETERS
        elif kind in SEARCH_KINDS and tool.get("external_web_access") is not False:
            out.append(search_tool(settings))
    return out, names


def _name(tool: dict[str, Any], where: str) -> str:
    name = tool.get("name")
    if not isinstance(name, str) or not name:
        raise bad(INVALID, f"{where}.name must be a non-empty string", "tools")
    return name


def _as_function(name: str, description: Any, parameters: Any) -> dict[str, Any]:
    function: dict[str, Any] = {"name": name}
    if description is not None:
        function["description"] = description
    if parameters is not None:
        function["parameters"] = parameters
    return {"type": "function", "function": function}


def _function(tool: dict[str, Any], chat_name: str) -> dict[str, Any]:
    """A Responses function tool (flat) as a Chat Completions one (nested); other keys are
    kept so the core refuses what it cannot take."""
    function = {k: v for k, v in tool.items() if k != "type"}
    function["name"] = chat_name
    return {"type": "function", "function": function}


def _namespace(tool: dict[str, Any], where: str, names: ToolNames) -> list[dict[str, Any]]:
    namespace = _name(tool, where)
    inner = tool.get("tools")
    if not isinstance(inner, list):
        raise bad(INVALID, f"{where}.tools must be a list", "tools")
    group = tool.get("description")
    out = []
    for index, function in enumerate(inner):
        at = f"{where}.tools[{index}]"
        if not isinstance(function, dict) or function.get("type", "function") != "function":
            continue  # only functions can be flattened; anything else is left out
        client = ClientTool("function", _name(function, at), namespace)
        flat = _function(function, names.add(client, at))
        if isinstance(group, str) and group.strip():
            # The group's description has no place of its own upstream: each function says it.
            own = flat["function"].get("description")
            both = f"{namespace}: {group.strip()}" + (f"\n{own}" if isinstance(own, str) else "")
            flat["function"]["description"] = both
        out.append(flat)
    return out


def _custom(tool: dict[str, Any], chat_name: str) -> dict[str, Any]:
    description = str(tool.get("description") or "")
    form = tool.get("format")
    if isinstance(form, dict) and form.get("type") == "grammar":
        syntax, definition = form.get("syntax", "lark"), form.get("definition", "")
        description += f"\nThe input must follow this {syntax} grammar:\n{definition}"
    parameters = {
        "type": "object",
        "properties": {"input": {"type": "string", "description": "The tool's free-form input."}},
        "required": ["input"],
    }
    return _as_function(chat_name, description.strip() or None, parameters)


def tool_choice(value: Any, names: ToolNames) -> Any:
    """The Responses ``tool_choice`` in Chat Completions' shape."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, dict) and value.get("type") in ("function", "custom"):
        name = value.get("name")
        if not isinstance(name, str) or not name:
            raise bad(INVALID, "tool_choice.name must be a non-empty string", "tool_choice")
        chat_name = names.chat(ClientTool(value["type"], name, value.get("namespace")))
        return {"type": "function", "function": {"name": chat_name}}
    if isinstance(value, dict) and value.get("type") in SEARCH_KINDS:
        return "auto"  # Zhipu's search runs with the request; the model cannot be made to call it
    raise bad(
        ErrorCode.UNSUPPORTED_PARAMETER,
        'tool_choice must be "auto", "none", "required" or a function or custom tool',
        "tool_choice",
    )


def call_item(
    item_id: str, call_id: str, chat_name: str, arguments: str, names: ToolNames
) -> dict[str, Any]:
    """The output item of one completed upstream call, in the kind the client offered."""
    tool = names.client(chat_name)
    if tool.kind == "custom":
        parsed = _json_object(arguments)
        text = parsed.get("input") if parsed is not None else None
        return {
            "type": "custom_tool_call",
            "id": item_id,
            "call_id": call_id,
            "name": tool.name,
            "input": text if isinstance(text, str) else arguments,
            "status": "completed",
        }
    if tool.kind == LOCAL_SHELL:
        parsed = _json_object(arguments) or {}
        command = parsed.get("command")
        if isinstance(command, str):
            command = [command]
        action: dict[str, Any] = {
            "type": "exec",
            "command": command if isinstance(command, list) else [],
            "env": {},
            "working_directory": parsed.get("workdir"),
            "timeout_ms": parsed.get("timeout_ms"),
            "user": None,
        }
        return {
            "type": "local_shell_call",
            "id": item_id,
            "call_id": call_id,
            "action": action,
            "status": "completed",
        }
    item = {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": tool.name,
        "arguments": arguments,
        "status": "completed",
    }
    if tool.namespace is not None:
        item["namespace"] = tool.namespace
    return item


def streams_arguments(chat_name: str, names: ToolNames) -> bool:
    """Whether a call's arguments are streamed as ``function_call_arguments`` deltas (function
    calls) or given whole when the call ends (custom and shell calls, whose shape differs)."""
    return names.client(chat_name).kind == "function"


def call_arguments(item: dict[str, Any], names: ToolNames) -> tuple[str, str]:
    """An input call item (function, custom or shell) as the upstream name and JSON arguments."""
    kind = item.get("type")
    if kind == "custom_tool_call":
        chat_name = names.chat(ClientTool("custom", str(item.get("name") or "")))
        return chat_name, json.dumps({"input": item.get("input", "")}, ensure_ascii=False)
    if kind == "local_shell_call":
        action = item.get("action")
        if not isinstance(action, dict):
            action = {}
        arguments: dict[str, Any] = {"command": action.get("command", [])}
        if action.get("working_directory"):
            arguments["workdir"] = action["working_directory"]
        if action.get("timeout_ms"):
            arguments["timeout_ms"] = action["timeout_ms"]
        return names.chat(ClientTool(LOCAL_SHELL, LOCAL_SHELL)), json.dumps(arguments)
    name = item.get("name")
    namespace = item.get("namespace")
    tool = ClientTool("function", name if isinstance(name, str) else "", namespace)
    return names.chat(tool), item.get("arguments", "")


def _json_object(text: str) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
