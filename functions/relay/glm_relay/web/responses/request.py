"""A ``POST /v1/responses`` body read into a ``ChatRequest`` and what the response must echo.

Each Responses field is read here or by the chat core it is handed to under its Chat Completions
name (``max_output_tokens`` is the output cap, ``reasoning.effort`` is ``reasoning_effort``,
``text.format`` is ``response_format``, ``safety_identifier`` is ``user``); the README's
Responses request table lists every field. Unknown fields are ``unknown_parameter`` as on
``/v1``; fields that change nothing are dropped; values that cannot be honoured are refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from glm_relay.chat.messages import parse_messages
from glm_relay.chat.options import read_fields
from glm_relay.chat.request import ChatRequest, bad, build_chat, sendable_json
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.web.openai_api import OPENAI_MESSAGES
from glm_relay.web.openai_fields import FieldPolicy, check_fields, check_stream_options
from glm_relay.web.responses.items import input_messages
from glm_relay.web.responses.tools import ToolNames, tool_choice, translate_tools

if TYPE_CHECKING:
    from glm_relay.chat.models import ModelSpec
    from glm_relay.chat.sealed import ReasoningSeal
    from glm_relay.config import Settings

INVALID = ErrorCode.INVALID_PARAMETER
SEALED_REASONING = "reasoning.encrypted_content"
LOGPROBS = "message.output_text.logprobs"
POLICY = FieldPolicy(
    read=frozenset(
        {
            "model",
            "input",
            "instructions",
            "stream",
            "stream_options",
            "store",
            "previous_response_id",
            "include",
            "max_output_tokens",
            "temperature",
            "top_p",
            "tools",
            "tool_choice",
            "parallel_tool_calls",
            "reasoning",
            "text",
            "truncation",
            "user",
            "safety_identifier",
            "metadata",
        }
    ),
    # No effect on the answer: caching hints and a client's own bookkeeping (Codex).
    ignored=frozenset({"prompt_cache_key", "prompt_cache_retention", "client_metadata"}),
    defaults_only={
        "background": (False,),
        "service_tier": ("auto", "default"),
        "top_logprobs": (0,),
        "max_tool_calls": (),
        "conversation": (),
        "prompt": (),
    },
    why={
        "background": "answers run while the request is open",
        "max_tool_calls": "the model's calls cannot be counted upstream",
        "conversation": "use previous_response_id",
        "prompt": "prompt templates are not stored here",
    },
)
ECHOED = ("instructions", "max_output_tokens", "temperature", "top_p", "truncation", "user")
# Echoed in the Response object as given (or translated from): checked for text UTF-8 cannot hold.
ECHOED_AS_GIVEN = (*ECHOED, "tools", "tool_choice", "reasoning", "text", "metadata")
SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class ResponsesRequest:
    """A checked request: the chat, how to answer, and what the Response object echoes.

    ``kept`` is how many leading messages of ``chat.messages`` are the ``instructions``: they
    are not carried into a follow-up (``previous_response_id``), as OpenAI does not either.
    """

    chat: ChatRequest
    names: ToolNames
    stream: bool
    store: bool
    sealed_reasoning: bool
    instructions: int
    echo: dict[str, Any] = field(default_factory=dict)


def needs_seal(payload: dict[str, Any]) -> bool:
    """Whether reading or answering this request seals or opens reasoning."""
    include = payload.get("include")
    if isinstance(include, list) and SEALED_REASONING in include:
        return True
    items = payload.get("input")
    return isinstance(items, list) and any(
        isinstance(i, dict) and i.get("encrypted_content") is not None for i in items
    )


def may_hold_surrogates(body: bytes) -> bool:
    """Whether a JSON body escapes a surrogate (``\\udXXX``): only then can a string in it hold
    one that UTF-8 cannot encode (a scan far cheaper than encoding every echoed field)."""
    return SURROGATE_ESCAPE.search(body) is not None


def check_payload(payload: dict[str, Any], *, surrogates: bool = True) -> None:
    """Field names and the simple flags, before anything is read or looked up; with
    ``surrogates`` (see ``may_hold_surrogates``), that the echoed fields are encodable."""
    check_fields(payload, POLICY)
    check_stream_options(payload.get("stream_options"))
    for name in ("stream", "store", "parallel_tool_calls"):
        if payload.get(name) is not None and not isinstance(payload[name], bool):
            raise bad(INVALID, f"{name} must be a boolean", name)
    previous = payload.get("previous_response_id")
    if previous is not None and (not isinstance(previous, str) or not previous):
        raise bad(
            INVALID, "previous_response_id must be a non-empty string", "previous_response_id"
        )
    for name in ECHOED_AS_GIVEN if surrogates else ():
        if isinstance(payload.get(name), str | list | dict):
            sendable_json(payload[name], name, name)


def read_request(
    payload: dict[str, Any],
    spec: ModelSpec,
    settings: Settings,
    *,
    history: list[dict[str, Any]],
    seal: ReasoningSeal | None,
) -> ResponsesRequest:
    """The checked request; ``history`` is the stored conversation ``previous_response_id``
    names (empty without one)."""
    chat_tools, names = translate_tools(payload.get("tools"), settings)
    instructions = _instructions(payload.get("instructions"))
    given, origins = input_messages(payload.get("input"), names, seal, history)
    raw = [*instructions, *history, *given]
    origins = (
        ["instructions"] * len(instructions) + ["previous_response_id"] * len(history) + origins
    )
    try:
        messages = parse_messages(raw, settings, OPENAI_MESSAGES, spec)
    except RelayError as error:
        raise _in_input(error, origins) from None
    reasoning = _object(payload, "reasoning", ("effort", "summary", "generate_summary"))
    text = _object(payload, "text", ("format", "verbosity"))
    include = _include(payload.get("include"))
    chat_fields = {
        "max_output_tokens": payload.get("max_output_tokens"),
        "temperature": payload.get("temperature"),
        "top_p": payload.get("top_p"),
        "user": payload.get("user") or payload.get("safety_identifier"),
        "tools": chat_tools,
        "tool_choice": tool_choice(payload.get("tool_choice"), names),
        "parallel_tool_calls": payload.get("parallel_tool_calls"),
        "reasoning_effort": reasoning.get("effort"),
        "response_format": _response_format(text.get("format")),
    }
    fields = read_fields(chat_fields, spec, settings, max_tokens_names=("max_output_tokens",))
    chat = build_chat(settings, spec, messages, fields)
    _truncation(payload.get("truncation"))
    echo = {name: payload.get(name) for name in ECHOED}
    echo.update(
        tools=payload.get("tools") or [],
        tool_choice=payload.get("tool_choice") or "auto",
        parallel_tool_calls=payload.get("parallel_tool_calls") is not False,
        previous_response_id=payload.get("previous_response_id"),
        reasoning={"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        text={"format": text.get("format") or {"type": "text"}},
        metadata=_metadata(payload.get("metadata")),
        truncation=payload.get("truncation") or "disabled",
    )
    return ResponsesRequest(
        chat=chat,
        names=names,
        stream=bool(payload.get("stream")),
        store=payload.get("store") is not False,
        sealed_reasoning=SEALED_REASONING in include,
        instructions=len(instructions),
        echo=echo,
    )


def _in_input(error: RelayError, origins: list[str]) -> RelayError:
    """A message reader's error in the request's own terms: ``messages[3]`` is the input item
    (or ``instructions``, the stored conversation) that message came from."""

    named: list[str] = []

    def origin(match: re.Match[str]) -> str:
        index = int(match.group(1))
        if index >= len(origins):
            return match.group(0)
        named.append(origins[index])
        return origins[index]

    message = re.sub(r"\bmessages\[(\d+)\]", origin, error.message)
    message = re.sub(r"^messages must", "input must", message)
    param = "instructions" if named[:1] == ["instructions"] else "input"
    extra = {"param": param, **error.extra}
    return RelayError(error.code, message, retry_after=error.retry_after, extra=extra)


def _instructions(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, str):
        raise bad(INVALID, "instructions must be a string", "instructions")
    return [{"role": "system", "content": value}] if value.strip() else []


def _object(payload: dict[str, Any], name: str, known: tuple[str, ...]) -> dict[str, Any]:
    value = payload.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise bad(INVALID, f"{name} must be an object", name)
    unknown = sorted(k for k, v in value.items() if v is not None and k not in known)
    if unknown:
        raise bad(
            ErrorCode.UNSUPPORTED_PARAMETER, f"{name}.{unknown[0][:32]} is not supported", name
        )
    return value


def _include(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(INVALID, "include must be a list of strings", "include")
    if LOGPROBS in value:
        raise bad(
            ErrorCode.UNSUPPORTED_PARAMETER, f"include {LOGPROBS}: no logprobs upstream", "include"
        )
    return value


def _response_format(value: Any) -> Any:
    """``text.format`` (flat) as Chat Completions' ``response_format`` (nested schema)."""
    if not isinstance(value, dict) or value.get("type") != "json_schema":
        return value
    schema = {k: value[k] for k in ("name", "schema", "strict", "description") if k in value}
    return {"type": "json_schema", "json_schema": schema}


def _truncation(value: Any) -> None:
    if value not in (None, "disabled", "auto"):
        raise bad(INVALID, 'truncation must be "disabled" or "auto"', "truncation")


def _metadata(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if (
        not isinstance(value, dict)
        or len(value) > 16
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())
    ):
        raise bad(INVALID, "metadata must be at most 16 string keys and values", "metadata")
    return value
