"""The canonical chat request both front ends translate into, and the checks every field gets.

Everything is checked before any upstream call: a request the relay would refuse must not cost a
token. The front ends read their own wire formats; the rules for a field's value live here and in
``options.py`` once, and ``upstream/translate.py`` is the one place that writes Zhipu's body.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from glm_relay.chat.models import ModelSpec, aliased, allowed_spec, default_model
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A validated chat request, in the relay's terms (Zhipu's, where the two agree).

    ``messages`` are in Zhipu's shape: roles system, user, assistant, tool; string content,
    or a part list for a user message with images, video or files (``chat/media.py``);
    ``tool_calls``, ``tool_call_id`` and ``reasoning_content`` where given. ``response_format``
    may be ``json_schema``, which the translation turns into what Zhipu takes.

    Tools are in Zhipu's shape, except that a function keeps ``"strict": True`` when the caller
    set it (the translation removes it; the relay checks those calls' arguments instead).
    ``tool_choice`` is ``"auto"``, ``"required"`` or ``None`` (not given: auto when there are
    tools); a caller's ``"none"`` is a request without tools. ``tool_choice_name`` names the
    function the model must call (it wins over ``tool_choice``). ``parallel_tool_calls=False``
    keeps only the model's first tool call. Zhipu takes only ``auto``: the rest is emulated
    (``upstream/translate.py``, ``chat/call_rules.py``).
    """

    model: str
    messages: list[dict[str, Any]]
    max_tokens: int
    temperature: float | None = None
    top_p: float | None = None
    conversation_id: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    tool_choice: str | None = None  # "auto", "required" or None (auto when there are tools)
    tool_choice_name: str | None = None  # the function the model must call
    parallel_tool_calls: bool = True  # False: only the first tool call is returned
    tool_stream: bool = False  # ask for tool-call arguments in fragments
    thinking: str | None = None  # "enabled", "disabled" or None (the model's default)
    clear_thinking: bool | None = None
    reasoning_effort: str | None = None
    response_format: dict[str, Any] | None = None
    stop: tuple[str, ...] = ()
    do_sample: bool | None = None
    user_id: str | None = None
    spec: ModelSpec | None = field(default=None, compare=False, repr=False)

    def capped(self, max_tokens: int) -> ChatRequest:
        """The same request with ``max_tokens`` lowered to ``max_tokens`` if above it."""
        return replace(self, max_tokens=min(self.max_tokens, max_tokens))

    @property
    def has_media(self) -> bool:
        """Whether a message carries images, video or files (its content is then a part list)."""
        return any(isinstance(message.get("content"), list) for message in self.messages)

    @property
    def prompt_chars(self) -> int:
        """Characters of message text (content, tool-call arguments, kept reasoning), the
        measure limits are set in; media are not text and count nothing here (the upstream's
        usage counts their tokens)."""
        return sum(len(text) for text in message_texts(self.messages))


def message_texts(messages: Iterable[dict[str, Any]]) -> Iterator[str]:
    """Each text of ``messages`` in Zhipu's shape: string content or text parts, kept reasoning,
    tool-call arguments (what prompt limits and token estimates measure)."""
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            yield content
        elif isinstance(content, list):
            yield from (part["text"] for part in content if part.get("type") == "text")
        reasoning = message.get("reasoning_content")
        if reasoning:
            yield reasoning
        for call in message.get("tool_calls") or ():
            yield call["function"]["arguments"]


def bad(code: ErrorCode, message: str, param: str | None = None) -> RelayError:
    """A refusal of one field; ``param`` names it (OpenAI's error ``param``)."""
    return RelayError(code, message, extra={"param": param} if param else None)


def sendable(text: str, where: str, *, code: str = "invalid_parameter") -> str:
    """Refuse what JSON can carry but the upstream cannot: NUL and unpaired surrogates."""
    if "\0" in text:
        raise bad(ErrorCode(code), f"{where} holds a NUL character")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise bad(ErrorCode(code), f"{where} holds an unpaired surrogate") from None
    return text


def sendable_json(value: Any, where: str, param: str | None = None) -> Any:
    """Refuse a JSON value (a schema, an object a response repeats) holding text UTF-8 cannot
    hold, an unpaired surrogate, instead of failing while it is sent or echoed."""
    if _holds_surrogate(value):
        raise bad(ErrorCode.INVALID_PARAMETER, f"{where} holds an unpaired surrogate", param)
    return value


def _holds_surrogate(value: Any) -> bool:
    """A walk that encodes only strings that are not ASCII (cheaper than encoding the value)."""
    if isinstance(value, str):
        if value.isascii():
            return False
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_holds_surrogate(k) or _holds_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_surrogate(item) for item in value)
    return False


def number_param(
    payload: dict[str, Any], name: str, *, low_open: bool, low: float = 0.0, high: float = 1.0
) -> float | None:
    """An optional finite number in [low, high] (or (low, high] with ``low_open``)."""
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad(ErrorCode.INVALID_PARAMETER, f"{name} must be a number", name)
    too_low = value <= low if low_open else value < low
    if too_low or value > high:
        interval = f"({low:g}, {high:g}]" if low_open else f"[{low:g}, {high:g}]"
        raise bad(ErrorCode.INVALID_PARAMETER, f"{name} must be in {interval}", name)
    return float(value)


def resolve_model(settings: Settings, model: Any) -> ModelSpec:
    """The spec of the asked model (the default when none is named; an alias stands for its
    model, ``MODEL_ALIASES``), if it is allowed here."""
    if model is not None and not isinstance(model, str):
        raise bad(ErrorCode.INVALID_PARAMETER, "model must be a string", "model")
    chosen = model or default_model(settings)
    target = aliased(settings, chosen)
    spec = allowed_spec(settings, target)
    if spec is None:
        via = f" (an alias of {target[:64]!r})" if target != chosen else ""
        raise bad(
            ErrorCode.MODEL_NOT_ALLOWED,
            f"model {chosen[:64]!r}{via} is not allowed here",
            "model",
        )
    return spec


def build_chat(
    settings: Settings,
    spec: ModelSpec,
    messages: list[dict[str, Any]],
    fields: dict[str, Any],
    *,
    conversation_id: str | None = None,
) -> ChatRequest:
    """The checked request: ``fields`` are the ``ChatRequest`` fields ``options.read_fields``
    gave; the prompt must be within the configured length."""
    chat = ChatRequest(
        model=spec.name, messages=messages, conversation_id=conversation_id, spec=spec, **fields
    )
    check_tool_choice(chat)
    if chat.prompt_chars > settings.max_prompt_chars:
        raise bad(
            ErrorCode.PROMPT_TOO_LONG, f"the prompt is over {settings.max_prompt_chars} characters"
        )
    return chat


def check_tool_choice(chat: ChatRequest) -> None:
    """A call can be required only of a function the request offers."""
    functions = {t["function"]["name"] for t in chat.tools if t["type"] == "function"}
    if chat.tool_choice_name is not None and chat.tool_choice_name not in functions:
        raise bad(
            ErrorCode.INVALID_PARAMETER,
            f"tool_choice names {chat.tool_choice_name[:64]!r}, which is not among the tools",
            "tool_choice",
        )
    if chat.tool_choice == "required" and not functions:
        raise bad(
            ErrorCode.INVALID_PARAMETER,
            'tool_choice "required" needs at least one function tool',
            "tool_choice",
        )
