"""Tools: checking `tools` and `tool_choice`, deciding when the model calls a function, and
building the call with arguments that satisfy the function's parameter schema.

When the model calls: the body has function tools, the last message is a user message, and
either `#tool=NAME[,NAME…]` names them or the prompt text mentions a function's name as a word;
or a system message demands a call (`demanded`), whatever the last message. `#tool=none`
forbids calls. Arguments fill the schema's required properties (all properties when
it lists none) with fixed values, so tests can predict them exactly (`fill_schema`).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from mock_upstream import errors
from mock_upstream.prompt import system_instructions

MAX_TOOLS = 128
TOOL_TYPES = frozenset({"function", "web_search", "retrieval"})
DEFAULT_TOOL_NAME = "lookup"  # what `#fault=tool_call` calls when the body has no function tool
_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# A system instruction the model obeys: "you must answer by calling the function NAME" or "...
# calling one of the provided functions" (how a relay asks for a call Zhipu cannot force).
_DEMAND = re.compile(
    r"must answer by calling (?:the function ([A-Za-z0-9_-]{1,64})|one of the provided functions)",
    re.IGNORECASE,
)
_STRING_KEYS = frozenset({"search_engine", "search_query", "search_recency_filter"})
_STRING_KEYS |= {"search_domain_filter", "content_size", "result_sequence", "search_prompt"}
WEB_SEARCH_MAX_COUNT = 50


def _bad(field: str, why: str) -> errors.ZhipuError:
    return errors.ZhipuError(400, errors.BAD_PARAMETER, f"Invalid {field} parameter: {why}.")


def _missing(field: str) -> errors.ZhipuError:
    return errors.ZhipuError(400, errors.MISSING_FIELD, f"The {field} parameter is required.")


def _check_function(tool: dict[str, Any], where: str) -> str:
    function = tool.get("function")
    if function is None:
        raise _missing(f"{where}.function")
    if not isinstance(function, dict):
        raise _bad(f"{where}.function", "it must be an object")
    name = function.get("name")
    if name is None:
        raise _missing(f"{where}.function.name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad(f"{where}.function.name", "it must be 1-64 letters, digits, _ or -")
    description = function.get("description")
    if description is not None and not isinstance(description, str):
        raise _bad(f"{where}.function.description", "it must be a string")
    parameters = function.get("parameters")
    if parameters is not None and not isinstance(parameters, dict):
        raise _bad(f"{where}.function.parameters", "it must be a JSON schema object")
    return name


def _check_web_search(tool: dict[str, Any], where: str) -> None:
    config = tool.get("web_search")
    if config is None:
        return
    if not isinstance(config, dict):
        raise _bad(f"{where}.web_search", "it must be an object")
    for key in ("enable", "search_result", "require_search"):
        if config.get(key) is not None and not isinstance(config[key], bool):
            raise _bad(f"{where}.web_search.{key}", "it must be a boolean")
    for key in _STRING_KEYS:
        if config.get(key) is not None and not isinstance(config[key], str):
            raise _bad(f"{where}.web_search.{key}", "it must be a string")
    count = config.get("count")
    if count is not None and (
        not isinstance(count, int)
        or isinstance(count, bool)
        or not 1 <= count <= WEB_SEARCH_MAX_COUNT
    ):
        raise errors.ZhipuError(
            400,
            errors.BAD_REQUEST,
            f"Invalid {where}.web_search.count parameter: it must be within [1, 50].",
        )


def check_tools(tools: Any) -> None:
    """`tools`: a list of at most 128 well-formed tools with distinct function names."""
    if tools is None:
        return
    if not isinstance(tools, list):
        raise _bad("tools", "it must be a list")
    if len(tools) > MAX_TOOLS:
        raise errors.ZhipuError(
            400, errors.BAD_REQUEST, f"Invalid tools parameter: at most {MAX_TOOLS} tools."
        )
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _bad(where, "each tool must be an object")
        kind = tool.get("type")
        if kind is None:
            raise _missing(f"{where}.type")
        if kind not in TOOL_TYPES:
            raise _bad(f"{where}.type", "type is illegal (function, web_search or retrieval)")
        if kind == "function":
            name = _check_function(tool, where)
            if name in names:
                raise _bad(f"{where}.function.name", f"{name!r} is given twice")
            names.add(name)
        elif kind == "web_search":
            _check_web_search(tool, where)
        else:
            retrieval = tool.get("retrieval")
            if not isinstance(retrieval, dict) or retrieval.get("knowledge_id") is None:
                raise _missing(f"{where}.retrieval.knowledge_id")
            if not isinstance(retrieval["knowledge_id"], str):
                raise _bad(f"{where}.retrieval.knowledge_id", "it must be a string")


def check_tool_choice(value: Any) -> None:
    """Only "auto" exists; "required", "none" and a named function are refused."""
    if value is not None and value != "auto":
        raise _bad("tool_choice", 'only "auto" is supported')


def check_tool_calls(calls: Any, where: str) -> None:
    """An assistant message's `tool_calls`, as a client sends the history back."""
    if not isinstance(calls, list):
        raise _bad(where, "it must be a list")
    for i, call in enumerate(calls):
        here = f"{where}[{i}]"
        if not isinstance(call, dict):
            raise _bad(here, "each tool call must be an object")
        function = call.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _bad(f"{here}.function", "it needs a name")
        arguments = function.get("arguments")
        if arguments is not None and not isinstance(arguments, str | dict):
            raise _bad(f"{here}.function.arguments", "it must be a JSON string")
        if call.get("id") is not None and not isinstance(call["id"], str):
            raise _bad(f"{here}.id", "it must be a string")


def function_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The body's function definitions, in order."""
    out = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            function = tool.get("function")
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                out.append(function)
    return out


def web_search_config(body: dict[str, Any]) -> dict[str, Any] | None:
    """The first enabled `web_search` tool's settings, or None when there is none."""
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "web_search":
            config = tool.get("web_search")
            config = config if isinstance(config, dict) else {}
            if config.get("enable") is not False:
                return config
    return None


def _number(schema: dict[str, Any], default: float) -> float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value = default if low is None else low
    if "exclusiveMinimum" in schema and "minimum" not in schema:
        value += 1
    if high is not None and value > high:
        value = high
    return value


def fill_schema(schema: Any, text: str) -> Any:
    """A fixed value satisfying `schema`: its first enum or const value; strings are `text`;
    integers and numbers their minimum (else 1 and 1.5, capped by a maximum); booleans true;
    arrays `minItems` (at least one) copies of their item; objects their required properties
    (all of them when `required` is absent)."""
    if not isinstance(schema, dict):
        return text
    if "const" in schema:
        return schema["const"]
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        return schema["enum"][0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        kind = "object" if isinstance(schema.get("properties"), dict) else "string"
    if kind == "integer":
        return int(_number(schema, 1))
    if kind == "number":
        return _number(schema, 1.5)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    if kind == "array":
        count = max(1, int(schema.get("minItems", 1)))
        return [fill_schema(schema.get("items"), text) for _ in range(count)]
    if kind == "object":
        properties = schema.get("properties")
        properties = properties if isinstance(properties, dict) else {}
        required = schema.get("required")
        names = required if isinstance(required, list) else list(properties)
        return {name: fill_schema(properties.get(name), text) for name in names}
    return text


def arguments_for(function: dict[str, Any] | None, text: str) -> str:
    """The JSON `arguments` string of a call: the parameter schema filled (`{}` when it has no
    properties), or `{"query": text}` for the default `lookup` tool (no function in the body)."""
    if function is None:
        value: Any = {"query": text}
    else:
        parameters = function.get("parameters")
        value = fill_schema(parameters, text) if isinstance(parameters, dict) else {}
        if not isinstance(value, dict):
            value = {}  # a schema without properties: the function takes no arguments
    return json.dumps(value, ensure_ascii=False)


def call_id(seed: bytes, index: int, name: str) -> str:
    digest = hashlib.blake2b(seed + b"tool" + index.to_bytes(4, "big") + name.encode())
    return "call_" + digest.hexdigest()[:24]


def mentioned(functions: list[dict[str, Any]], text: str) -> list[dict[str, Any]]:
    """Functions whose name appears in the prompt as a whole word, in the order of `tools`."""
    words = set(re.findall(r"[A-Za-z0-9_-]+", text))
    return [f for f in functions if f["name"] in words]


def select(functions: list[dict[str, Any]], names: tuple[str, ...]) -> list[dict[str, Any]]:
    """The functions `#tool=` names, in the directive's order; ValueError for an unknown one."""
    by_name = {f["name"]: f for f in functions}
    out = []
    for name in names:
        if name not in by_name:
            known = ", ".join(by_name) or "none"
            raise ValueError(f"#tool={name} names no function tool of the body (tools: {known})")
        out.append(by_name[name])
    return out


def demanded(body: dict[str, Any], functions: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The function a system message demands a call of: the one it names, or for "one of the
    provided functions" the first not yet called since the last user message (else the first)."""
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    for content in system_instructions(messages):
        match = _DEMAND.search(content)
        if match is None or not functions:
            continue
        if match.group(1):
            return next((f for f in functions if f["name"] == match.group(1)), None)
        called = _called_since_user(messages)
        return next((f for f in functions if f["name"] not in called), functions[0])
    return None


def _called_since_user(messages: list[dict[str, Any]]) -> set[str]:
    names: set[str] = set()
    for message in reversed(messages):
        if message.get("role") == "user":
            break
        for call in message.get("tool_calls") or ():
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.add(function["name"])
    return names
