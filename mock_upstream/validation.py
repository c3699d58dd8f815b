"""Request validation with the real API's answers: 1210 not a JSON object or a value out of range
(or not allowed for the model), 1211 unknown model, 1213 missing field, 1214 invalid field,
1261 prompt too long. Each model's limits come from `catalogue`."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mock_upstream import errors, tools, vision
from mock_upstream.catalogue import ModelSpec, spec_for, thinking_on
from mock_upstream.options import MockOptions
from mock_upstream.prompt import prompt_tokens

ROLES = frozenset({"system", "user", "assistant", "tool"})


@dataclass(frozen=True)
class ChatRequest:
    body: dict[str, Any]
    model: str
    messages: list[dict[str, Any]]
    stream: bool
    prompt_tokens: int
    spec: ModelSpec


def _bad(field: str, why: str) -> errors.ZhipuError:
    """1214: the field has the wrong type or an invalid value."""
    return errors.ZhipuError(400, errors.BAD_PARAMETER, f"Invalid {field} parameter: {why}.")


def _range(field: str, why: str) -> errors.ZhipuError:
    """1210: the value is well-formed but outside what the API (or this model) allows."""
    return errors.ZhipuError(400, errors.BAD_REQUEST, f"Invalid {field} parameter: {why}.")


def _missing(field: str) -> errors.ZhipuError:
    return errors.ZhipuError(400, errors.MISSING_FIELD, f"The {field} parameter is required.")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_body(raw: bytes) -> dict[str, Any]:
    """The JSON object in `raw`, or 400 / 1210."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise errors.ZhipuError(
            400, errors.BAD_REQUEST, "The request body is not valid JSON."
        ) from None
    if not isinstance(body, dict):
        raise errors.ZhipuError(400, errors.BAD_REQUEST, "The request body must be a JSON object.")
    return body


def _check_content(content: Any, where: str, spec: ModelSpec) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise _bad(f"{where}.content", "it must be a string or a list of parts")
    if not spec.vision:
        raise errors.ZhipuError(
            400,
            errors.BAD_PARAMETER,
            f"messages.content.type 参数非法: {where}.content must be a string for "
            f"{spec.name}, a text model; content parts need a vision model.",
        )
    if not content:
        raise _bad(f"{where}.content", "a content list must not be empty")
    vision.check_parts(content, f"{where}.content")


def _check_message(message: Any, where: str, spec: ModelSpec) -> None:
    if not isinstance(message, dict):
        raise _bad(where, "each message must be an object")
    role = message.get("role")
    if role is None:
        raise _missing(f"{where}.role")
    if role not in ROLES:
        raise _bad(f"{where}.role", f"must be one of {', '.join(sorted(ROLES))}")
    content = message.get("content")
    if role == "tool":
        call_id = message.get("tool_call_id")
        if call_id is None or call_id == "":
            raise _missing(f"{where}.tool_call_id")
        if not isinstance(call_id, str):
            raise _bad(f"{where}.tool_call_id", "it must be a string")
        if content is None:
            raise _missing(f"{where}.content")
    if role == "assistant":
        if message.get("tool_calls") is not None:
            tools.check_tool_calls(message["tool_calls"], f"{where}.tool_calls")
        if content is None and message.get("tool_calls"):
            return
        if content is None:
            raise _missing(f"{where}.content")
    if content is None:
        raise _missing(f"{where}.content")
    if isinstance(content, str) and role in ("system", "user") and not content.strip():
        raise _bad(f"{where}.content", "it must not be empty")
    _check_content(content, where, spec)


def _check_messages(messages: Any, spec: ModelSpec) -> list[dict[str, Any]]:
    if messages is None:
        raise _missing("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "it must be a non-empty list")
    for i, message in enumerate(messages):
        _check_message(message, f"messages[{i}]", spec)
    return messages


def _is_stop(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(s, str) for s in value)
    )


def _is_thinking(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in ("enabled", "disabled")


def _is_response_format(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in ("text", "json_object")


def _is_id(low: int, high: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, str) and low <= len(v) <= high


# Optional fields a relay may pass through: (name, check, why it failed), all 1214. `null` means
# "not given", which is how the official SDK sends fields it was not asked to set.
_FIELD_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("stream", lambda v: isinstance(v, bool), "it must be a boolean"),
    ("temperature", _is_number, "it must be a number"),
    ("top_p", _is_number, "it must be a number"),
    ("max_tokens", lambda v: _is_int(v) and v >= 1, "it must be a positive integer"),
    ("do_sample", lambda v: isinstance(v, bool), "it must be a boolean"),
    ("stop", _is_stop, "it must be a string or a list of strings"),
    ("request_id", _is_id(6, 64), "it must be a string of 6 to 64 characters"),
    ("user_id", _is_id(6, 128), "it must be a string of 6 to 128 characters"),
    ("thinking", _is_thinking, 'its type must be "enabled" or "disabled"'),
    ("response_format", _is_response_format, 'its type must be "text" or "json_object"'),
    ("tool_stream", lambda v: isinstance(v, bool), "it must be a boolean"),
    ("reasoning_effort", lambda v: isinstance(v, str), "it must be a string"),
)

MAX_STOP = 4


def _check_optional(body: dict[str, Any]) -> None:
    for name, check, why in _FIELD_RULES:
        value = body.get(name)
        if value is not None and not check(value):
            raise _bad(name, why)
    thinking = body.get("thinking")
    clear = thinking.get("clear_thinking") if isinstance(thinking, dict) else None
    if clear is not None and not isinstance(clear, bool):
        raise _bad("thinking.clear_thinking", "it must be a boolean")


def _check_ranges(body: dict[str, Any], spec: ModelSpec) -> None:
    """Well-typed values the API still refuses: out of range, or not for this model."""
    temperature, top_p = body.get("temperature"), body.get("top_p")
    if temperature is not None and not 0 <= temperature <= 1:
        raise _range("temperature", "it must be within [0, 1]")
    if top_p is not None and not 0.01 <= top_p <= 1:
        raise _range("top_p", "it must be within [0.01, 1]")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and max_tokens > spec.max_output:
        raise _range("max_tokens", f"{spec.name} writes at most {spec.max_output} tokens")
    stop = body.get("stop")
    if isinstance(stop, list) and len(stop) > MAX_STOP:
        raise _range("stop", f"at most {MAX_STOP} stop strings")
    thinking = body.get("thinking")
    disabled = isinstance(thinking, dict) and thinking.get("type") == "disabled"
    if disabled and spec.thinking == "always":
        raise _range("thinking", f"thinking cannot be disabled on {spec.name}")
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not spec.reasoning_efforts:
            raise _range("reasoning_effort", f"{spec.name} does not take it (GLM-5.2 and later)")
        if disabled:
            raise _range("reasoning_effort", "it needs thinking enabled")
        if effort not in spec.reasoning_efforts:
            allowed = ", ".join(sorted(spec.reasoning_efforts))
            raise _bad("reasoning_effort", f"{spec.name} takes {allowed}")
    if body.get("tool_stream") is True and body.get("stream") is not True:
        raise _range("tool_stream", "it needs stream=true")


CALL_REASONING_MISSING = (
    "thinking is enabled but reasoning_content is missing in assistant tool call message"
)


def _check_call_reasoning(
    messages: list[dict[str, Any]], body: dict[str, Any], spec: ModelSpec
) -> None:
    """GLM-5.1 and later, thinking on: a tool-call turn must come back with its reasoning."""
    if not spec.needs_call_reasoning or not thinking_on(body, spec):
        return
    for message in messages:
        calls = message.get("role") == "assistant" and message.get("tool_calls")
        if calls and not message.get("reasoning_content"):
            raise errors.ZhipuError(400, errors.BAD_PARAMETER, CALL_REASONING_MISSING)


def validate(body: dict[str, Any], options: MockOptions) -> ChatRequest:
    """Check `body` like the real API does, in the same order: model, messages, the rest, size."""
    model = body.get("model")
    if model is None:
        raise _missing("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "it must be a non-empty string")
    if model not in options.models:
        raise errors.ZhipuError(
            400, errors.UNKNOWN_MODEL, f"Model {model!r} does not exist; check the model code."
        )
    spec = spec_for(model)
    messages = _check_messages(body.get("messages"), spec)
    _check_optional(body)
    _check_ranges(body, spec)
    tools.check_tools(body.get("tools"))
    tools.check_tool_choice(body.get("tool_choice"))
    _check_call_reasoning(messages, body, spec)
    tokens = prompt_tokens(messages)
    limit = min(options.max_prompt_tokens, spec.context)
    if tokens > limit:
        raise errors.ZhipuError(
            400,
            errors.PROMPT_TOO_LONG,
            f"The prompt has {tokens} tokens, over the limit of {limit}.",
        )
    return ChatRequest(body, model, messages, body.get("stream") is True, tokens, spec)
