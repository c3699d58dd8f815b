"""One reader for a list of chat messages; each front end says which shapes it accepts.

``/chat`` takes ``{role, content}`` with string content; ``/v1`` also takes OpenAI's
``developer`` role and text-part arrays. The skeleton (list and count limits, roles, content
checks, at least one user turn) is the same, so it lives here once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from glm_relay.chat.request import sendable
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError

Message = dict[str, str]


@dataclass(frozen=True, slots=True)
class MessageRules:
    """What one front end accepts in a message.

    ``roles`` maps the caller's role names onto the upstream's; ``only_keys`` refuses any other
    key (``None``: other keys are ignored); ``text_parts`` accepts a list of text parts as content,
    joined with newlines; ``refused_keys`` names keys whose presence is refused with a reason.
    """

    roles: Mapping[str, str]
    only_keys: frozenset[str] | None = None
    text_parts: bool = False
    refused_keys: Mapping[str, str] | None = None


BASIC_ROLES = {"system": "system", "user": "user", "assistant": "assistant"}


def parse_messages(raw: Any, settings: Settings, rules: MessageRules) -> list[Message]:
    """The checked messages, or ``invalid_messages`` / ``too_many_messages`` naming the culprit."""
    if not isinstance(raw, list) or not raw:
        raise RelayError(ErrorCode.INVALID_MESSAGES, "messages must be a non-empty list")
    if len(raw) > settings.max_messages:
        raise RelayError(
            ErrorCode.TOO_MANY_MESSAGES, f"at most {settings.max_messages} messages are allowed"
        )
    messages = []
    for index, message in enumerate(raw):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or (
            rules.only_keys is not None and set(message) - rules.only_keys
        ):
            shape = "{role, content}" if rules.only_keys is not None else "an object"
            raise _invalid(f"{where} must be {shape}")
        role = message.get("role")
        role = rules.roles.get(role) if isinstance(role, str) else None
        if role is None:
            raise _invalid(f"{where}.role must be system, user or assistant")
        for key, reason in (rules.refused_keys or {}).items():
            if message.get(key):
                raise _invalid(f"{where}: {reason}")
        content = message.get("content")
        if rules.text_parts and isinstance(content, list):
            content = _joined_text_parts(content, where)
        messages.append({"role": role, "content": checked_content(content, where)})
    if not any(m["role"] == "user" for m in messages):
        raise _invalid("messages must include a user message")
    return messages


def checked_content(content: Any, where: str) -> str:
    """A message's text: a non-empty string the upstream can take."""
    if not isinstance(content, str) or not content.strip():
        raise _invalid(f"{where}.content must be a non-empty string")
    return sendable(content, f"{where}.content", code="invalid_messages")


def _joined_text_parts(parts: list[Any], where: str) -> str:
    """A list of ``{"type": "text", "text": ...}`` parts as one string."""
    texts = []
    for part in parts:
        if not isinstance(part, dict) or part.get("type") != "text":
            raise _invalid(f"{where}.content: only text parts are supported")
        if not isinstance(part.get("text"), str):
            raise _invalid(f"{where}.content: a text part needs a string text")
        texts.append(part["text"])
    return "\n".join(texts)


def _invalid(message: str) -> RelayError:
    return RelayError(ErrorCode.INVALID_MESSAGES, message)
