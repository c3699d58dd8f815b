"""The canonical chat request both front ends translate into, and the checks every field gets.

Everything is checked before any upstream call: a request the relay would refuse must not cost a
token. The front ends read their own wire formats; the rules for a field's value live here once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    conversation_id: str | None = None

    def capped(self, max_tokens: int) -> ChatRequest:
        """The same request with ``max_tokens`` lowered to ``max_tokens`` if above it."""
        return replace(self, max_tokens=min(self.max_tokens, max_tokens))

    @property
    def prompt_chars(self) -> int:
        """Characters of message content, the measure limits are set in."""
        return sum(len(m["content"]) for m in self.messages)


def _bad(code: str, message: str) -> RelayError:
    return RelayError(ErrorCode(code), message)


def sendable(text: str, where: str, *, code: str = "invalid_parameter") -> str:
    """Refuse what JSON can carry but the upstream cannot: NUL and unpaired surrogates."""
    if "\0" in text:
        raise _bad(code, f"{where} holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(code, f"{where} holds an unpaired surrogate") from None
    return text


def number_param(
    payload: dict[str, Any], name: str, *, low_open: bool, low: float = 0.0, high: float = 1.0
) -> float | None:
    """An optional finite number in [low, high] (or (low, high] with ``low_open``)."""
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _bad("invalid_parameter", f"{name} must be a number")
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        interval = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise _bad("invalid_parameter", f"{name} must be in {interval}")
    return float(value)


def max_tokens_param(payload: dict[str, Any], name: str, settings: Settings) -> int | None:
    """An optional integer from 1 to the configured cap."""
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad("invalid_parameter", f"{name} must be an integer")
    if not 1 <= value <= settings.max_tokens_cap:
        cap = settings.max_tokens_cap
        raise _bad("invalid_parameter", f"{name} must be between 1 and {cap}")
    return value


def build_chat(
    settings: Settings,
    *,
    model: str | None,
    messages: list[dict[str, str]],
    temperature: float | None = None,
    top_p: float | None = None,
    max_tokens: int | None = None,
    conversation_id: str | None = None,
) -> ChatRequest:
    """The checked request: an allowed model, and a prompt within the configured length."""
    chosen = model or settings.default_model
    if not settings.model_allowed(chosen):
        raise _bad("model_not_allowed", f"model {chosen[:64]!r} is not allowed here")
    chat = ChatRequest(
        model=chosen,
        messages=messages,
        max_tokens=max_tokens or settings.max_tokens_cap,
        temperature=temperature,
        top_p=top_p,
        conversation_id=conversation_id,
    )
    if chat.prompt_chars > settings.max_prompt_chars:
        raise _bad("prompt_too_long", f"the prompt is over {settings.max_prompt_chars} characters")
    return chat
