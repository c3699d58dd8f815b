"""The request fields both front ends share beyond ``model`` and ``messages``, checked once.

Each reader takes the caller's value and the model's spec and returns what the ``ChatRequest``
holds, or refuses with ``invalid_parameter`` (a malformed value) or ``unsupported_parameter``
(a well-formed value the relay or this model cannot honour). The README's request table is the
user-facing summary of these rules.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from glm_relay.chat.models import ModelSpec
from glm_relay.chat.request import bad, number_param, sendable, sendable_json
from glm_relay.chat.search import check_search_tools
from glm_relay.chat.tools import read_tools
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode

INVALID = ErrorCode.INVALID_PARAMETER
UNSUPPORTED = ErrorCode.UNSUPPORTED_PARAMETER
MAX_STOP = 4
MAX_TEMPERATURE = 2.0
USER_ID_LENGTH = (6, 128)
# OpenAI's reasoning_effort values that are spelled differently upstream.
EFFORT_ALIASES = {"minimal": "low", "xhigh": "max"}
THINKING_WORDS = {"on": "enabled", "off": "disabled", "enabled": "enabled", "disabled": "disabled"}


def read_fields(
    payload: Mapping[str, Any],
    spec: ModelSpec,
    settings: Settings,
    *,
    max_tokens_names: tuple[str, ...],
) -> dict[str, Any]:
    """Every shared field of ``payload`` as ``ChatRequest`` keyword arguments.

    ``max_tokens_names`` lists the names the front end reads for the output cap, the first
    given one winning (``/v1``: ``max_completion_tokens``, then ``max_tokens``).
    """
    fields: dict[str, Any] = {
        "max_tokens": max_tokens(payload, max_tokens_names, spec, settings),
        # OpenAI's range; above Zhipu's 1 the translation sends 1 (upstream/translate.py).
        "temperature": number_param(
            dict(payload), "temperature", low_open=False, high=MAX_TEMPERATURE
        ),
        "top_p": number_param(dict(payload), "top_p", low_open=False, low=0.01),
        "do_sample": _bool(payload, "do_sample"),
        "stop": stop_words(payload.get("stop")),
        "response_format": response_format(payload.get("response_format")),
        "user_id": user_id(payload.get("user")),
    }
    fields.update(thinking_fields(payload.get("thinking"), payload.get("reasoning_effort"), spec))
    fields.update(tool_fields(payload, spec))
    check_search_tools(fields["tools"], settings)
    return fields


def _bool(payload: Mapping[str, Any], name: str) -> bool | None:
    value = payload.get(name)
    if value is not None and not isinstance(value, bool):
        raise bad(INVALID, f"{name} must be a boolean", name)
    return value


def max_tokens(
    payload: Mapping[str, Any], names: tuple[str, ...], spec: ModelSpec, settings: Settings
) -> int:
    """The output cap: the caller's, within the model's limit and the operator's ceiling
    (``MAX_TOKENS_CAP``); ``DEFAULT_MAX_TOKENS`` (lowered to both) when none is given."""
    limit = spec.max_output
    if 0 < settings.max_tokens_cap < limit:
        limit = settings.max_tokens_cap
    for name in names:
        value = payload.get(name)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(INVALID, f"{name} must be an integer", name)
        if not 1 <= value <= limit:
            why = "this relay's ceiling" if limit < spec.max_output else f"{spec.name}'s limit"
            raise bad(INVALID, f"{name} must be between 1 and {limit} ({why})", name)
        return value
    return min(settings.default_max_tokens, limit)


def stop_words(value: Any) -> tuple[str, ...]:
    """``stop``: a string or up to four, none of them empty."""
    if value is None:
        return ()
    words = [value] if isinstance(value, str) else value
    if not isinstance(words, list) or not all(isinstance(w, str) and w for w in words):
        raise bad(INVALID, "stop must be a non-empty string or a list of them", "stop")
    if len(words) > MAX_STOP:
        raise bad(INVALID, f"stop takes at most {MAX_STOP} strings", "stop")
    return tuple(sendable(w, "stop") for w in words)


def response_format(value: Any) -> dict[str, Any] | None:
    """``text`` and ``json_object`` as given; ``json_schema`` kept whole for the translation
    (JSON mode plus the schema as an instruction)."""
    if value is None:
        return None
    kind = value.get("type") if isinstance(value, dict) else None
    if kind in ("text", "json_object"):
        return {"type": kind}
    if kind == "json_schema":
        schema = value.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("schema", {}), dict):
            raise bad(
                INVALID, "response_format.json_schema must hold a schema object", "response_format"
            )
        sendable_json(schema, "response_format.json_schema", "response_format")
        return {"type": "json_schema", "json_schema": schema}
    if isinstance(kind, str):
        raise bad(UNSUPPORTED, f"response_format {kind[:32]!r} is not supported", "response_format")
    raise bad(INVALID, "response_format must be an object with a type", "response_format")


def user_id(value: Any) -> str | None:
    """``user`` as Zhipu's ``user_id`` (6 to 128 characters): passed unchanged when it fits,
    else replaced by ``u-`` and 32 hex digits of its SHA-256 (stable, and no longer readable)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise bad(INVALID, "user must be a non-empty string", "user")
    low, high = USER_ID_LENGTH
    if low <= len(value) <= high:
        return sendable(value, "user")
    return "u-" + hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()[:32]


def thinking_fields(thinking: Any, effort: Any, spec: ModelSpec) -> dict[str, Any]:
    """``thinking`` (Zhipu's object, or ``on``/``off``) and ``reasoning_effort``, mapped for
    the model; a value the model cannot take is refused rather than dropped."""
    mode, clear = _thinking_mode(thinking)
    if effort is not None:
        if not isinstance(effort, str):
            raise bad(INVALID, "reasoning_effort must be a string", "reasoning_effort")
        if effort == "none":
            if mode == "enabled":
                raise bad(
                    INVALID, 'reasoning_effort "none" contradicts thinking on', "reasoning_effort"
                )
            mode, effort = "disabled", None
        else:
            effort = EFFORT_ALIASES.get(effort, effort)
    if mode == "disabled" and effort is not None:
        raise bad(INVALID, "reasoning_effort needs thinking on", "reasoning_effort")
    if spec.thinking == "none":
        if mode == "enabled" or effort is not None:
            raise bad(
                UNSUPPORTED,
                f"{spec.name} does not reason (thinking is for GLM-4.5 and later)",
                "thinking",
            )
        mode = None  # already off: nothing to send
    if spec.thinking == "always" and mode == "disabled":
        raise bad(UNSUPPORTED, f"thinking cannot be turned off on {spec.name}", "thinking")
    if effort is not None and not spec.reasoning_efforts:
        # A model that reasons at one depth only (GLM-4.5 to GLM-5.1): any effort asks for it.
        mode, effort = "enabled", None
    if effort is not None and effort not in spec.reasoning_efforts:
        allowed = ", ".join(spec.reasoning_efforts)
        raise bad(
            UNSUPPORTED,
            f"reasoning_effort {effort[:16]!r}: {spec.name} takes {allowed}",
            "reasoning_effort",
        )
    return {"thinking": mode, "clear_thinking": clear if mode else None, "reasoning_effort": effort}


def _thinking_mode(value: Any) -> tuple[str | None, bool | None]:
    if value is None:
        return None, None
    if isinstance(value, bool):
        return ("enabled" if value else "disabled"), None
    if isinstance(value, str) and value.lower() in THINKING_WORDS:
        return THINKING_WORDS[value.lower()], None
    if isinstance(value, dict) and value.get("type") in ("enabled", "disabled"):
        extra = sorted(set(value) - {"type", "clear_thinking"})
        if extra:
            raise bad(UNSUPPORTED, f"thinking.{extra[0][:32]} is not supported", "thinking")
        clear = value.get("clear_thinking")
        if clear is not None and not isinstance(clear, bool):
            raise bad(INVALID, "thinking.clear_thinking must be a boolean", "thinking")
        return value["type"], clear
    raise bad(
        INVALID, 'thinking must be "on", "off" or {"type": "enabled" | "disabled"}', "thinking"
    )


def tool_fields(payload: Mapping[str, Any], spec: ModelSpec) -> dict[str, Any]:
    """``tools``, ``tool_choice``, ``parallel_tool_calls`` and ``tool_stream``.

    ``tool_choice``: ``auto`` (or none) is ``auto``; ``none`` is honoured by not sending the
    tools; ``required`` and a named function (``{"type": "function", "function": {"name"}}``)
    are kept for the translation to emulate (Zhipu takes only ``auto``). ``tool_stream``
    defaults to on when function tools are given and the model streams them.
    """
    tools = read_tools(payload.get("tools"))
    choice, name = read_tool_choice(payload.get("tool_choice"))
    parallel = _bool(payload, "parallel_tool_calls")
    if choice == "none":
        tools, choice = (), None
    asked = _bool(payload, "tool_stream")
    if asked and not spec.tool_stream:
        raise bad(
            UNSUPPORTED, f"{spec.name} does not stream tool calls (tool_stream)", "tool_stream"
        )
    functions = any(tool["type"] == "function" for tool in tools)
    stream = functions and (spec.tool_stream if asked is None else asked)
    return {
        "tools": tools,
        # "required" and a name stay without tools, for build_chat to refuse.
        "tool_choice": "required" if choice == "required" else ("auto" if tools else None),
        "tool_choice_name": name,
        "parallel_tool_calls": parallel is not False,
        "tool_stream": stream,
    }


def read_tool_choice(value: Any) -> tuple[str | None, str | None]:
    """``tool_choice`` as (``auto`` | ``none`` | ``required`` | None, the named function)."""
    if value is None or value in ("auto", "none", "required"):
        return value, None
    if isinstance(value, dict) and value.get("type") == "function":
        function = value.get("function")
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str) or not name:
            raise bad(INVALID, "tool_choice.function needs a name", "tool_choice")
        return "required", name
    if isinstance(value, dict) and isinstance(value.get("type"), str):
        kind = value["type"][:32]
        raise bad(UNSUPPORTED, f"tool_choice of type {kind!r} is not supported", "tool_choice")
    raise bad(
        INVALID,
        'tool_choice must be "auto", "none", "required" or {"type": "function", ...}',
        "tool_choice",
    )
