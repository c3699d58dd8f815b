"""An Anthropic Messages request as the relay's ``ChatRequest``.

Each Anthropic field is translated into the shared request fields (``chat/options.py``), so a
value gets exactly the checks it gets on ``/v1``; what has no Zhipu equivalent follows a rule
written here and in the README's Messages table:

- ``tools``: client tools (``input_schema``) become function tools. Anthropic's own tool types
  (``web_search_*``, ``bash_*``, ``text_editor_*``, ``code_execution_*``, ``computer_*``, ...:
  any ``type`` but ``custom``) are dropped: they run on Anthropic's servers or have schemas GLM
  was not trained on, and Zhipu refuses unknown tool types. ``defer_loading`` is accepted; the
  tool is sent like any other.
- ``tool_choice``: ``auto``, ``any`` (``required``), ``tool`` (a named function), ``none``
  (the tools are not sent); ``disable_parallel_tool_use`` is ``parallel_tool_calls: false``.
- ``thinking``: ``enabled`` and ``adaptive`` turn GLM's thinking on (on models that reason;
  adaptive asks nothing of the others), ``disabled`` off; ``budget_tokens`` picks a
  ``reasoning_effort`` on models that take one (GLM-5.2 and later), as ``output_config.effort``
  does (which wins). On other models the budget and the effort have no equivalent: the model
  thinks as it does by default. ``display: "omitted"`` streams no thinking text, only its
  signature.
- ``context_management``: the ``clear_thinking_20251015`` edit is Zhipu's
  ``thinking.clear_thinking`` (``keep: "all"``: false, else true); other edits are refused.
- ``top_k``: ``1`` is greedy decoding (``do_sample: false``); other values are refused.
- ``metadata.user_id`` is Zhipu's ``user_id`` (hashed when longer than 128 characters).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glm_relay.chat.messages import BASIC_ROLES, MessageRules, parse_messages
from glm_relay.chat.models import ModelSpec
from glm_relay.chat.options import read_fields
from glm_relay.chat.request import ChatRequest, bad, build_chat, resolve_model
from glm_relay.errors import ErrorCode
from glm_relay.web.anthropic.blocks import zhipu_messages

if TYPE_CHECKING:
    from glm_relay.config import Settings

INVALID = ErrorCode.INVALID_PARAMETER
UNSUPPORTED = ErrorCode.UNSUPPORTED_PARAMETER
FIELDS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "tools",
        "tool_choice",
        "thinking",
        "output_config",
        "metadata",
        "context_management",
        "service_tier",  # capacity routing at Anthropic: nothing to choose here
    }
)
EFFORT_ORDER = ("low", "medium", "high", "max")
# budget_tokens at or below each bound picks that effort; above the last: "max".
BUDGET_EFFORTS = ((4_096, "low"), (16_384, "medium"), (65_536, "high"))
MIN_BUDGET = 1024
MESSAGES_RULES = MessageRules(roles=BASIC_ROLES)
CLEAR_THINKING_EDIT = "clear_thinking_20251015"


@dataclass(frozen=True, slots=True)
class MessagesCall:
    """A checked Messages request: the chat, how to deliver it, and what the reply echoes."""

    chat: ChatRequest
    stream: bool
    show_thinking: bool


def parse_messages_request(
    payload: dict[str, Any], settings: Settings, unseal: Callable[[str], str | None]
) -> MessagesCall:
    """Check a ``POST /v1/messages`` body; every refusal names the field."""
    # null is "not set", as for every field here.
    unknown = sorted(
        name for name, value in payload.items() if name not in FIELDS and value is not None
    )
    if unknown:
        raise bad(ErrorCode.UNKNOWN_PARAMETER, f"{unknown[0][:64]}: unknown field", unknown[0][:64])
    model = payload.get("model")
    if not isinstance(model, str) or not model:
        raise bad(INVALID, "model: a model name is required", "model")
    if payload.get("max_tokens") is None:
        raise bad(INVALID, "max_tokens: a number is required", "max_tokens")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise bad(INVALID, "stream must be a boolean", "stream")
    spec = resolve_model(settings, model)
    conversation = zhipu_messages(payload.get("system"), payload.get("messages"), unseal)
    turn_config, config = conversation.output_config, payload.get("output_config")
    if isinstance(turn_config, dict) and isinstance(config, dict):
        payload = {**payload, "output_config": {**config, **turn_config}}
    elif turn_config is not None:
        payload = {**payload, "output_config": turn_config}
    messages = parse_messages(conversation.messages, settings, MESSAGES_RULES, spec)
    thinking, show = _thinking(payload, spec)
    temperature = payload.get("temperature")
    # Anthropic's range; /v1 takes OpenAI's, up to 2.
    if (
        isinstance(temperature, int | float)
        and not isinstance(temperature, bool)
        and temperature > 1
    ):
        raise bad(INVALID, "temperature must be in [0, 1]", "temperature")
    shared: dict[str, Any] = {
        "max_tokens": payload.get("max_tokens"),
        "temperature": payload.get("temperature"),
        "top_p": payload.get("top_p"),
        "do_sample": _top_k(payload.get("top_k")),
        "stop": payload.get("stop_sequences") or None,
        "user": _user(payload.get("metadata")),
        "response_format": _response_format(payload.get("output_config")),
        **thinking,
        **_tools(payload.get("tools"), payload.get("tool_choice")),
    }
    fields = read_fields(shared, spec, settings, max_tokens_names=("max_tokens",))
    return MessagesCall(build_chat(settings, spec, messages, fields), bool(stream), show)


def _thinking(payload: dict[str, Any], spec: ModelSpec) -> tuple[dict[str, Any], bool]:
    """``thinking``, ``output_config.effort`` and ``context_management`` as the shared
    ``thinking`` and ``reasoning_effort`` fields; and whether thinking text is shown."""
    value = payload.get("thinking")
    kind = value.get("type") if isinstance(value, dict) else None
    if value is not None and kind not in ("enabled", "adaptive", "disabled"):
        raise bad(INVALID, 'thinking.type must be "enabled", "adaptive" or "disabled"', "thinking")
    if isinstance(value, dict):
        extra = sorted(k for k in value if k not in ("type", "budget_tokens", "display"))
        if extra:
            raise bad(INVALID, f"thinking.{extra[0][:32]}: unknown field", "thinking")
    display = value.get("display") if isinstance(value, dict) else None
    if display not in (None, "summarized", "omitted"):
        raise bad(INVALID, 'thinking.display must be "summarized" or "omitted"', "thinking")
    effort = None
    if kind == "enabled":
        assert isinstance(value, dict)
        budget = value.get("budget_tokens")
        if isinstance(budget, bool) or not isinstance(budget, int) or budget < MIN_BUDGET:
            raise bad(
                INVALID, f"thinking.budget_tokens must be an integer >= {MIN_BUDGET}", "thinking"
            )
        limit = payload.get("max_tokens")
        if isinstance(limit, int) and budget >= limit:
            raise bad(INVALID, "thinking.budget_tokens must be below max_tokens", "thinking")
        effort = next((e for bound, e in BUDGET_EFFORTS if budget <= bound), "max")
    asked = _effort(payload.get("output_config"))
    effort = asked or effort
    reasons = spec.thinking != "none"
    mode = None
    if kind == "disabled":
        mode = "disabled"
    elif kind == "enabled" or (kind == "adaptive" and reasons):
        mode = "enabled"
    fields: dict[str, Any] = {"thinking": None, "reasoning_effort": None}
    clear = _clear_thinking(payload.get("context_management"))
    if mode is not None:
        fields["thinking"] = {"type": mode}
        if clear is not None and mode == "enabled" and reasons:
            fields["thinking"]["clear_thinking"] = clear
    if effort is not None and mode != "disabled" and reasons and spec.reasoning_efforts:
        fields["reasoning_effort"] = _nearest_effort(effort, spec.reasoning_efforts)
    return fields, display != "omitted"


def _effort(config: Any) -> str | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise bad(INVALID, "output_config must be an object", "output_config")
    extra = sorted(k for k in config if k not in ("effort", "format"))
    if extra:
        raise bad(INVALID, f"output_config.{extra[0][:32]}: unknown field", "output_config")
    effort = config.get("effort")
    if effort is not None and effort not in EFFORT_ORDER:
        raise bad(INVALID, "output_config.effort must be low, medium, high or max", "output_config")
    return effort


def _nearest_effort(effort: str, allowed: tuple[str, ...]) -> str:
    """``effort``, or the next one up the model takes (its highest when none is)."""
    rank = EFFORT_ORDER.index(effort)
    return next((e for e in EFFORT_ORDER[rank:] if e in allowed), allowed[-1])


def _response_format(config: Any) -> dict[str, Any] | None:
    """``output_config.format`` (a JSON schema) as ``/v1``'s ``json_schema`` response format."""
    if not isinstance(config, dict) or config.get("format") is None:
        return None
    form = config["format"]
    if not isinstance(form, dict) or form.get("type") != "json_schema":
        raise bad(INVALID, 'output_config.format.type must be "json_schema"', "output_config")
    return {"type": "json_schema", "json_schema": {"schema": form.get("schema", {})}}


def _clear_thinking(value: Any) -> bool | None:
    if value is None:
        return None
    edits = value.get("edits") if isinstance(value, dict) else None
    if not isinstance(edits, list):
        raise bad(INVALID, "context_management.edits must be a list", "context_management")
    clear = None
    for edit in edits:
        kind = edit.get("type") if isinstance(edit, dict) else None
        if kind != CLEAR_THINKING_EDIT:
            shown = kind[:48] if isinstance(kind, str) else "an edit without a type"
            raise bad(
                UNSUPPORTED,
                f"context_management: {shown!r} is not supported (only {CLEAR_THINKING_EDIT})",
                "context_management",
            )
        clear = edit.get("keep") != "all"
    return clear


def _top_k(value: Any) -> bool | None:
    if value is None:
        return None
    if value == 1 and not isinstance(value, bool):
        return False  # greedy: the one most likely token, Zhipu's do_sample false
    raise bad(UNSUPPORTED, "top_k: Zhipu has no top_k (1, greedy, is accepted); use top_p", "top_k")


def _user(metadata: Any) -> str | None:
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise bad(INVALID, "metadata must be an object", "metadata")
    extra = sorted(k for k in metadata if k != "user_id")
    if extra:
        raise bad(INVALID, f"metadata.{extra[0][:32]}: unknown field", "metadata")
    return metadata.get("user_id")


def _tools(tools: Any, choice: Any) -> dict[str, Any]:
    """``tools`` and ``tool_choice`` as the shared fields (OpenAI's shape, read by
    ``chat/tools.py``); Anthropic's own tool types are dropped (see the module's rules)."""
    if tools is not None and not isinstance(tools, list):
        raise bad(INVALID, "tools must be a list", "tools")
    functions = []
    for index, tool in enumerate(tools or ()):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise bad(INVALID, f"{where} must be an object", "tools")
        if tool.get("type") not in (None, "custom"):
            continue  # an Anthropic tool type: dropped by rule
        extra = sorted(
            k
            for k, v in tool.items()
            if v is not None
            and k not in ("type", "name", "description", "input_schema", "cache_control")
            and k not in ("defer_loading", "strict")
        )
        if extra:
            raise bad(INVALID, f"{where}.{extra[0][:32]}: unknown field", "tools")
        if not isinstance(tool.get("input_schema"), dict):
            raise bad(INVALID, f"{where}.input_schema must be a JSON schema object", "tools")
        function = {
            "name": tool.get("name"),
            "description": tool.get("description"),
            "parameters": tool["input_schema"],
            "strict": tool.get("strict"),
        }
        functions.append({"type": "function", "function": function})
    fields: dict[str, Any] = {"tools": functions or None}
    if choice is None:
        return fields
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind not in ("auto", "any", "tool", "none"):
        raise bad(INVALID, "tool_choice.type must be auto, any, tool or none", "tool_choice")
    assert isinstance(choice, dict)
    if kind == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise bad(INVALID, "tool_choice.name must name a tool", "tool_choice")
        fields["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        fields["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
    no_parallel = choice.get("disable_parallel_tool_use")
    if no_parallel is not None and not isinstance(no_parallel, bool):
        raise bad(INVALID, "tool_choice.disable_parallel_tool_use must be a boolean", "tool_choice")
    if no_parallel:
        fields["parallel_tool_calls"] = False
    return fields
