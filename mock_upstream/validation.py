"""Request validation with the real API's answers: 1210 not a JSON object, 1211 unknown model,
1214 missing or bad field, 1261 prompt too long."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mock_upstream import errors
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


def _bad(field: str, why: str) -> errors.ZhipuError:
    return errors.ZhipuError(400, errors.BAD_PARAMETER, f"Invalid {field} parameter: {why}.")


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


def _check_messages(messages: Any) -> list[dict[str, Any]]:
    if messages is None:
        raise _bad("messages", "it is required")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages", "it must be a non-empty list")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise _bad(where, "each message must be an object")
        role = message.get("role")
        if role not in ROLES:
            raise _bad(f"{where}.role", f"must be one of {', '.join(sorted(ROLES))}")
        content = message.get("content")
        if role == "assistant" and content is None and message.get("tool_calls"):
            continue
        if isinstance(content, str):
            if role in ("system", "user") and not content.strip():
                raise _bad(f"{where}.content", "it must not be empty")
        elif isinstance(content, list):
            if not content or not all(isinstance(part, dict) for part in content):
                raise _bad(f"{where}.content", "a content list must hold part objects")
        else:
            raise _bad(f"{where}.content", "it must be a string or a list of parts")
    return messages


def _is_stop(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and all(isinstance(s, str) for s in value)
    )


def _is_thinking(value: Any) -> bool:
    return isinstance(value, dict) and value.get("type") in ("enabled", "disabled")


# Optional fields a relay may pass through: (name, check, why it failed). `null` means "not
# given", which is how the official SDK sends fields it was not asked to set.
_FIELD_RULES: tuple[tuple[str, Callable[[Any], bool], str], ...] = (
    ("stream", lambda v: isinstance(v, bool), "it must be a boolean"),
    ("temperature", lambda v: _is_number(v) and 0 <= v <= 1, "it must be within [0, 1]"),
    ("top_p", lambda v: _is_number(v) and 0 <= v <= 1, "it must be within [0, 1]"),
    ("max_tokens", lambda v: _is_int(v) and v >= 1, "it must be a positive integer"),
    ("do_sample", lambda v: isinstance(v, bool), "it must be a boolean"),
    ("stop", _is_stop, "it must be a string or a list of strings"),
    ("tools", lambda v: isinstance(v, list), "it must be a list"),
    ("request_id", lambda v: isinstance(v, str), "it must be a string"),
    ("user_id", lambda v: isinstance(v, str), "it must be a string"),
    ("thinking", _is_thinking, 'its type must be "enabled" or "disabled"'),
)


def _check_optional(body: dict[str, Any]) -> None:
    for name, check, why in _FIELD_RULES:
        value = body.get(name)
        if value is not None and not check(value):
            raise _bad(name, why)


def validate(body: dict[str, Any], options: MockOptions) -> ChatRequest:
    """Check `body` like the real API does, in the same order: model, messages, the rest, size."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _bad("model", "it is required and must be a string")
    if model not in options.models:
        raise errors.ZhipuError(
            400, errors.UNKNOWN_MODEL, f"Model {model!r} does not exist; check the model code."
        )
    messages = _check_messages(body.get("messages"))
    _check_optional(body)
    tokens = prompt_tokens(messages)
    if tokens > options.max_prompt_tokens:
        raise errors.ZhipuError(
            400,
            errors.PROMPT_TOO_LONG,
            f"The prompt has {tokens} tokens, over the limit of {options.max_prompt_tokens}.",
        )
    return ChatRequest(body, model, messages, body.get("stream") is True, tokens)
