"""One reader for a list of chat messages; each front end says which shapes it accepts.

The result is in Zhipu's shape: roles system, user, assistant and tool; string content for text
models; an assistant turn's ``tool_calls`` and ``reasoning_content`` (kept for preserved thinking);
a tool result's ``tool_call_id``. Content may be a string or a list of parts: each part type has
a reader in ``PART_READERS``; text parts are joined for text models, other kinds are refused with
``unsupported_content`` until a reader exists for them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from glm_relay.chat.models import ModelSpec
from glm_relay.chat.request import bad, sendable
from glm_relay.chat.tools import read_tool_calls
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError

Message = dict[str, Any]
# Message keys each role may carry besides role and content.
ROLE_KEYS = {
    "system": frozenset(),
    "user": frozenset(),
    "assistant": frozenset({"tool_calls", "reasoning_content"}),
    "tool": frozenset({"tool_call_id"}),
}
# Part types OpenAI clients send that no reader handles yet (vision is a later step).
KNOWN_PART_TYPES = frozenset({"image_url", "input_audio", "file", "video_url", "file_url"})


@dataclass(frozen=True, slots=True)
class MessageRules:
    """What one front end accepts in a message.

    ``roles`` maps the caller's role names onto Zhipu's; ``ignored_keys`` are dropped (they
    have no upstream meaning, e.g. OpenAI's participant ``name``); with ``strict``, any other
    unknown key is ``invalid_messages``, else it is refused only when it holds a value
    (``null`` is how SDKs send "not set").
    """

    roles: Mapping[str, str]
    ignored_keys: frozenset[str] = frozenset()
    strict: bool = True


BASIC_ROLES = {"system": "system", "user": "user", "assistant": "assistant", "tool": "tool"}


def parse_messages(
    raw: Any, settings: Settings, rules: MessageRules, spec: ModelSpec
) -> list[Message]:
    """The checked messages, or ``invalid_messages`` / ``too_many_messages`` naming the culprit."""
    if not isinstance(raw, list) or not raw:
        raise _invalid("messages must be a non-empty list")
    if len(raw) > settings.max_messages:
        raise RelayError(
            ErrorCode.TOO_MANY_MESSAGES, f"at most {settings.max_messages} messages are allowed"
        )
    messages = [_message(message, f"messages[{i}]", rules, spec) for i, message in enumerate(raw)]
    if not any(m["role"] == "user" for m in messages):
        raise _invalid("messages must include a user message")
    return messages


def _message(message: Any, where: str, rules: MessageRules, spec: ModelSpec) -> Message:
    if not isinstance(message, dict):
        raise _invalid(f"{where} must be an object")
    role = message.get("role")
    role = rules.roles.get(role) if isinstance(role, str) else None
    if role is None:
        raise _invalid(f"{where}.role must be one of {', '.join(rules.roles)}")
    allowed = ROLE_KEYS[role] | {"role", "content"} | rules.ignored_keys
    for key in sorted(set(message) - allowed):
        if rules.strict:
            raise _invalid(f"{where}.{key[:32]} is not accepted in a {role} message")
        if message[key] is not None:
            raise bad(ErrorCode.UNSUPPORTED_PARAMETER, f"{where}.{key[:32]} is not supported")
    out: Message = {"role": role}
    content = message.get("content")
    if isinstance(content, list):
        content = read_parts(content, f"{where}.content", spec)
    if role in ("system", "user"):
        out["content"] = checked_content(content, where)
    else:
        if content is None and role == "tool":
            raise _invalid(f"{where}.content is required in a tool message")
        if content is not None and not isinstance(content, str):
            raise _invalid(f"{where}.content must be a string, a list of parts or null")
        # An assistant turn may be all reasoning or tool calls: empty content is sent as "".
        out["content"] = sendable(content or "", f"{where}.content", code="invalid_messages")
    if role == "assistant":
        calls = message.get("tool_calls")
        if calls:
            out["tool_calls"] = read_tool_calls(calls, f"{where}.tool_calls")
        reasoning = message.get("reasoning_content")
        if reasoning is not None:
            if not isinstance(reasoning, str):
                raise _invalid(f"{where}.reasoning_content must be a string")
            if reasoning:
                out["reasoning_content"] = sendable(
                    reasoning, f"{where}.reasoning_content", code="invalid_messages"
                )
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str) or not call_id:
            raise _invalid(f"{where}.tool_call_id must be a non-empty string")
        out["tool_call_id"] = call_id
    return out


def checked_content(content: Any, where: str) -> str:
    """A system or user message's text: a non-empty string the upstream can take."""
    if not isinstance(content, str) or not content.strip():
        raise _invalid(f"{where}.content must be a non-empty string")
    return sendable(content, f"{where}.content", code="invalid_messages")


def _text_part(part: dict[str, Any], where: str) -> str:
    if not isinstance(part.get("text"), str):
        raise _invalid(f"{where}: a text part needs a string text")
    return str(part["text"])


PART_READERS: dict[str, Callable[[dict[str, Any], str], str]] = {"text": _text_part}


def read_parts(parts: list[Any], where: str, spec: ModelSpec) -> str:
    """A content part list, read part by part; for text models the text parts are joined with
    newlines (text models take only strings)."""
    texts = []
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        reader = PART_READERS.get(kind) if isinstance(kind, str) else None
        if reader is None:
            if kind in KNOWN_PART_TYPES:
                raise bad(
                    ErrorCode.UNSUPPORTED_CONTENT,
                    f"{at}: {kind} parts are not supported yet (only text parts are)",
                )
            raise _invalid(f"{at}: only text parts are supported")
        assert isinstance(part, dict)
        texts.append(reader(part, at))
    return "\n".join(texts)


def _invalid(message: str) -> RelayError:
    return RelayError(ErrorCode.INVALID_MESSAGES, message)
