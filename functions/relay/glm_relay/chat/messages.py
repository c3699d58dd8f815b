"""One reader for a list of chat messages; each front end says which shapes it accepts.

The result is in Zhipu's shape: roles system, user, assistant and tool; string content for text
models; an assistant turn's ``tool_calls`` and ``reasoning_content`` (kept for preserved thinking);
a tool result's ``tool_call_id``. Content may be a string or a list of parts: each part type has
a reader in ``PART_READERS``. Text parts are joined into a string (text models take only
strings); media parts (``chat/media.py``) are kept as parts, in user messages to vision models
only: anywhere else they are ``unsupported_content``, before any upstream call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from glm_relay.chat.media import MEDIA_PARTS, check_mixing, read_media_part
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
# Part types OpenAI clients send that the upstream cannot take.
REFUSED_PART_TYPES = frozenset({"input_audio", "refusal"})


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
        content = read_parts(content, f"{where}.content", spec, role)
    if isinstance(content, list):
        out["content"] = content  # a user message with media, read part by part
    elif role in ("system", "user"):
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
        out["tool_call_id"] = sendable(call_id, f"{where}.tool_call_id", code="invalid_messages")
    return out


def checked_content(content: Any, where: str) -> str:
    """A system or user message's text: a non-empty string the upstream can take."""
    if not isinstance(content, str) or not content.strip():
        raise _invalid(f"{where}.content must be a non-empty string")
    return sendable(content, f"{where}.content", code="invalid_messages")


def _text_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    if not isinstance(part.get("text"), str):
        raise _invalid(f"{where}: a text part needs a string text")
    return {
        "type": "text",
        "text": sendable(part["text"], f"{where}.text", code="invalid_messages"),
    }


PartReader = Callable[[dict[str, Any], str], dict[str, Any]]


def _media_part(kind: str) -> PartReader:
    return lambda part, where: read_media_part(kind, part, where)


# A reader per part type; each returns the part in Zhipu's shape.
PART_READERS: dict[str, PartReader] = {
    "text": _text_part,
    **{kind: _media_part(kind) for kind in MEDIA_PARTS},
}


def read_parts(parts: list[Any], where: str, spec: ModelSpec, role: str) -> str | list[Any]:
    """A content part list, read part by part. Without media the text parts are joined with
    newlines (text models take only strings); with media (a user message to a vision model)
    the parts are kept, in Zhipu's shape."""
    read: list[dict[str, Any]] = []
    kinds: list[str] = []
    for index, part in enumerate(parts):
        at = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        reader = PART_READERS.get(kind) if isinstance(kind, str) else None
        if reader is None:
            if kind in REFUSED_PART_TYPES:
                raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{at}: {kind} parts are not supported")
            raise _invalid(f"{at}: parts are text, image_url, video_url, file or file_url")
        assert isinstance(part, dict) and isinstance(kind, str)
        if kind in MEDIA_PARTS:
            _media_allowed(kind, at, spec, role)
            kinds.append(MEDIA_PARTS[kind])
        read.append(reader(part, at))
    if not kinds:
        return "\n".join(p["text"] for p in read)
    check_mixing(kinds, where)
    return read


def _media_allowed(kind: str, where: str, spec: ModelSpec, role: str) -> None:
    """Media go to vision models only, in user messages: refused before any upstream call."""
    if not spec.vision:
        raise bad(
            ErrorCode.UNSUPPORTED_CONTENT,
            f"{where}: {spec.name} takes text only; {kind} parts need a vision model "
            "(see input_modalities in GET /v1/models)",
        )
    if role != "user":
        raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{where}: {kind} parts go in user messages only")


def _invalid(message: str) -> RelayError:
    return RelayError(ErrorCode.INVALID_MESSAGES, message)
