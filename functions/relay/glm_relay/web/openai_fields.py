"""What ``/v1`` does with each field of OpenAI's request that Zhipu lacks.

A field at its default (what SDKs send unasked) is dropped: it changes nothing. A value that
would change the answer and cannot be honoured is refused with ``unsupported_parameter``, never
dropped. An unknown field with a value is ``unknown_parameter``; ``null`` always means "not
set". The README's request table lists the same policy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from glm_relay.errors import ErrorCode, RelayError

# Fields read by the shared checks (``chat/options.py``) or by ``parse_completion``.
READ_FIELDS = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "tool_stream",
        "thinking",
        "reasoning_effort",
        "response_format",
        "do_sample",
        "user",
        "safety_identifier",
    }
)
# Fields with no effect on the answer: dropped whatever their value.
IGNORED_FIELDS = frozenset({"prompt_cache_key", "prompt_cache_retention"})
# OpenAI-only fields: the values that change nothing (dropped); any other value is refused.
DEFAULTS_ONLY: dict[str, tuple[Any, ...]] = {
    "n": (1,),
    "presence_penalty": (0,),
    "frequency_penalty": (0,),
    "logprobs": (False,),
    "top_logprobs": (0,),
    "logit_bias": ({},),
    "store": (False,),
    "metadata": ({},),
    "service_tier": ("auto", "default"),
    "modalities": (["text"],),
    "verbosity": (),
    "seed": (),
    "audio": (),
    "prediction": (),
    "web_search_options": (),
    "functions": (),
    "function_call": (),
}
WHY = {
    "n": "the relay returns one choice",
    "seed": "the upstream has no seed; do_sample: false gives greedy answers",
    "web_search_options": 'use a {"type": "web_search"} tool instead',
    "functions": "use tools",
    "function_call": "use tools and tool_choice",
}
STREAM_OPTIONS = frozenset({"include_usage", "include_obfuscation"})


def check_openai_fields(payload: Mapping[str, Any]) -> None:
    """Refuse what ``/v1`` cannot honour; everything else is read or harmlessly dropped."""
    check_fields(payload, CHAT_COMPLETIONS)
    check_stream_options(payload.get("stream_options"))


@dataclass(frozen=True, slots=True)
class FieldPolicy:
    """One endpoint's fields: read, dropped whatever their value, or dropped at their default."""

    read: frozenset[str]
    ignored: frozenset[str]
    defaults_only: Mapping[str, tuple[Any, ...]]
    why: Mapping[str, str]


CHAT_COMPLETIONS = FieldPolicy(READ_FIELDS, IGNORED_FIELDS, DEFAULTS_ONLY, WHY)


def check_fields(payload: Mapping[str, Any], policy: FieldPolicy) -> None:
    """``unknown_parameter`` for a field ``policy`` does not name, ``unsupported_parameter`` for
    a defaults-only field at another value; ``null`` always means "not set"."""
    for name in sorted(payload):
        value = payload[name]
        if value is None or name in policy.read or name in policy.ignored:
            continue
        if name not in policy.defaults_only:
            raise RelayError(
                ErrorCode.UNKNOWN_PARAMETER,
                f"unknown field: {name[:64]}",
                extra={"param": name[:64]},
            )
        if not _is_default(value, policy.defaults_only[name]):
            why = policy.why.get(name, "the upstream has no such setting")
            raise RelayError(
                ErrorCode.UNSUPPORTED_PARAMETER,
                f"{name} {_shown(value)} is not supported: {why}",
                extra={"param": name},
            )


def check_stream_options(options: Any) -> None:
    """``stream_options``: ``include_usage`` and ``include_obfuscation`` (the latter dropped)."""
    if options is not None:
        if not isinstance(options, dict):
            raise _invalid("stream_options must be an object", "stream_options")
        unknown = sorted(set(options) - STREAM_OPTIONS)
        if unknown:
            raise RelayError(
                ErrorCode.UNSUPPORTED_PARAMETER,
                f"stream_options.{unknown[0][:32]} is not supported",
                extra={"param": "stream_options"},
            )
        if not isinstance(options.get("include_usage", False), bool):
            raise _invalid("stream_options.include_usage must be a boolean", "stream_options")


def _is_default(value: Any, defaults: tuple[Any, ...]) -> bool:
    # bool is an int: 1 must not pass for True, nor False for 0.
    return any(type(value) is type(d) and value == d for d in defaults) or any(
        isinstance(d, int | float)
        and not isinstance(d, bool)
        and not isinstance(value, bool)
        and isinstance(value, int | float)
        and value == d
        for d in defaults
    )


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _invalid(message: str, param: str) -> RelayError:
    return RelayError(ErrorCode.INVALID_PARAMETER, message, extra={"param": param})
