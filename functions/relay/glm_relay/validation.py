"""Turns a caller's request into a ``ChatRequest`` the upstream will accept, or a specific 4xx.

Everything is checked here, before any upstream call: a request the relay would refuse must not
cost a token.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from glm_relay.config import Settings
from glm_relay.errors import RelayError
from glm_relay.request import HttpRequest

ROLES = frozenset({"system", "user", "assistant"})
POST_FIELDS = frozenset({"messages", "model", "temperature", "top_p", "max_tokens", "conversation"})
GET_PARAMS = frozenset({"q", "model", "system", "access_token", "conversation"})


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request."""

    model: str
    messages: list[dict[str, str]]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    conversation_id: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def upstream_body(self, request_id: str) -> dict[str, Any]:
        """The ``chat/completions`` body (``stream`` is added by the client)."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "max_tokens": self.max_tokens,
            "request_id": request_id,
        }
        if self.temperature is not None:
            body["temperature"] = self.temperature
        if self.top_p is not None:
            body["top_p"] = self.top_p
        return body

    def capped(self, max_tokens: int) -> ChatRequest:
        """The same request with ``max_tokens`` lowered to ``max_tokens`` if above it."""
        return replace(self, max_tokens=min(self.max_tokens, max_tokens))

    @property
    def prompt_chars(self) -> int:
        """Characters of message content, the measure limits are set in."""
        return sum(len(m["content"]) for m in self.messages)


def _bad(code: str, message: str) -> RelayError:
    return RelayError.of(code, message)


def chat_from_query(request: HttpRequest, settings: Settings) -> ChatRequest:
    """``GET /chat?q=...&model=...&system=...`` (what EventSource can send)."""
    unknown = sorted(set(request.query) - GET_PARAMS)
    if unknown:
        raise _bad("unknown_parameter", f"unknown query parameter: {unknown[0]}")
    question = request.query.get("q", "")
    if not question.strip():
        raise _bad("missing_prompt", "the query parameter q (the question) is required")
    messages = []
    system = request.query.get("system")
    if system is not None:
        if not system.strip():
            raise _bad("invalid_parameter", "system must not be empty when given")
        messages.append({"role": "system", "content": _sendable(system, "system")})
    question = _sendable(question, "q")
    messages.append({"role": "user", "content": question})
    return build_chat(
        settings,
        model=request.query.get("model"),
        messages=messages,
        conversation_id=request.query.get("conversation") or None,
    )


def chat_from_body(request: HttpRequest, settings: Settings) -> ChatRequest:
    """``POST /chat`` with JSON ``{"messages": [...], "model", "temperature", ...}``."""
    payload = read_json_object(request, settings)
    unknown = sorted(set(payload) - POST_FIELDS)
    if unknown:
        raise _bad("unknown_parameter", f"unknown field: {unknown[0]}")
    messages = _messages(payload.get("messages"), settings)
    model = payload.get("model")
    if model is not None and not isinstance(model, str):
        raise _bad("invalid_parameter", "model must be a string")
    conversation = payload.get("conversation")
    if conversation is not None and not isinstance(conversation, str):
        raise _bad("invalid_parameter", "conversation must be a string")
    return build_chat(
        settings,
        model=model,
        messages=messages,
        temperature=number_param(payload, "temperature", low_open=False),
        top_p=number_param(payload, "top_p", low_open=True),
        max_tokens=max_tokens_param(payload, "max_tokens", settings),
        conversation_id=conversation or None,
    )


def read_json_object(request: HttpRequest, settings: Settings) -> dict[str, Any]:
    """The body as a JSON object, with the size, type and encoding checks every POST needs."""
    if len(request.body) > settings.max_body_bytes:
        raise _bad("body_too_large", f"the body is over {settings.max_body_bytes} bytes")
    content_type = request.headers.get("content-type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise _bad("unsupported_media_type", "send the body as Content-Type: application/json")
    try:
        text = request.body.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("invalid_encoding", "the body is not valid UTF-8") from None
    try:
        payload = json.loads(text)
    except (ValueError, RecursionError):
        raise _bad("invalid_json", "the body is not valid JSON (or nested too deeply)") from None
    if not isinstance(payload, dict):
        raise _bad("invalid_body", "the body must be a JSON object")
    return payload


def message_list(raw: Any, settings: Settings) -> list[Any]:
    """``messages`` must be a non-empty list within the configured count."""
    if not isinstance(raw, list) or not raw:
        raise _bad("invalid_messages", "messages must be a non-empty list")
    if len(raw) > settings.max_messages:
        raise _bad("too_many_messages", f"at most {settings.max_messages} messages are allowed")
    return raw


def checked_content(content: Any, where: str) -> str:
    """A message's text: a non-empty string the upstream can take."""
    if not isinstance(content, str) or not content.strip():
        raise _bad("invalid_messages", f"{where}.content must be a non-empty string")
    return _sendable(content, f"{where}.content", code="invalid_messages")


def _sendable(text: str, where: str, *, code: str = "invalid_parameter") -> str:
    """Refuse what JSON can carry but the upstream cannot: NUL and unpaired surrogates."""
    if "\0" in text:
        raise _bad(code, f"{where} holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise _bad(code, f"{where} holds an unpaired surrogate") from None
    return text


def require_user_message(messages: list[dict[str, str]]) -> list[dict[str, str]]:
    """A conversation the model can answer has at least one user turn."""
    if not any(m["role"] == "user" for m in messages):
        raise _bad("invalid_messages", "messages must include a user message")
    return messages


def _messages(raw: Any, settings: Settings) -> list[dict[str, str]]:
    messages = []
    for index, message in enumerate(message_list(raw, settings)):
        where = f"messages[{index}]"
        if not isinstance(message, dict) or set(message) - {"role", "content"}:
            raise _bad("invalid_messages", f"{where} must be {{role, content}}")
        role = message.get("role")
        if role not in ROLES:
            raise _bad("invalid_messages", f"{where}.role must be system, user or assistant")
        messages.append({"role": role, "content": checked_content(message.get("content"), where)})
    return require_user_message(messages)


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
