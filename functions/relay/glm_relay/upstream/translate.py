"""The one translation from the relay's chat request to Zhipu's ``chat/completions`` body.

Only fields that are set are sent, so each model's own defaults (sampling, thinking) apply.
``response_format: json_schema`` has no Zhipu equivalent: it is sent as JSON mode
(``json_object``) with the schema written into a system instruction, which asks the model for
matching JSON but cannot force it. Image parts given as ``data:image/...;base64,`` URLs are
sent as the official SDK sends them, the bare base64 after the prefix.

GLM-5.1 and later, thinking on, refuse an assistant tool-call turn without ``reasoning_content``,
and most clients cannot send it back (OpenAI Chat clients drop the field, a resumed Claude Code
session its thinking blocks, a Responses client may send no reasoning item). Such a turn gets
``PLACEHOLDER_REASONING``: Zhipu clears earlier turns' reasoning from the model's context unless
``clear_thinking`` is false, so by default the model never reads it. Reasoning that was sent back
is passed unchanged.
"""

from __future__ import annotations

import json
from typing import Any

from glm_relay.chat.models import CATALOGUE
from glm_relay.chat.request import ChatRequest

ZHIPU_MAX_TEMPERATURE = 1.0
REQUIRED_CALL_INSTRUCTION = (
    "You must answer by calling one of the provided functions, not with text, in this turn."
)
NAMED_CALL_INSTRUCTION = (
    "You must answer by calling the function {name}, not with text, in this turn."
)
SCHEMA_INSTRUCTION = (
    "Answer with one JSON object only, no other text. It must match this JSON schema{name}:\n"
    "{schema}"
)
# What an assistant tool-call turn sent back without its reasoning carries, where the model
# refuses the turn without any (a neutral statement, never invented reasoning).
PLACEHOLDER_REASONING = "Reasoning for this step was not kept."


def zhipu_body(chat: ChatRequest, request_id: str) -> dict[str, Any]:
    """The request body (``stream`` is added by the client); ``request_id`` ties Zhipu's logs
    to ours."""
    messages = sdk_messages(chat.messages) if chat.has_media else chat.messages
    body: dict[str, Any] = {
        "model": chat.model,
        "messages": with_call_reasoning(messages) if needs_call_reasoning(chat) else messages,
        "max_tokens": chat.max_tokens,
        "request_id": request_id,
    }
    temperature = chat.temperature
    optional = {
        "temperature": None if temperature is None else min(temperature, ZHIPU_MAX_TEMPERATURE),
        "top_p": chat.top_p,
        "do_sample": chat.do_sample,
        "user_id": chat.user_id,
        "reasoning_effort": chat.reasoning_effort,
    }
    body.update((key, value) for key, value in optional.items() if value is not None)
    if chat.stop:
        body["stop"] = list(chat.stop)
    if chat.thinking is not None:
        thinking: dict[str, Any] = {"type": chat.thinking}
        if chat.clear_thinking is not None:
            thinking["clear_thinking"] = chat.clear_thinking
        body["thinking"] = thinking
    if chat.tools:
        body["tools"] = offered_tools(chat)
        body["tool_choice"] = "auto"
        if chat.tool_stream:
            body["tool_stream"] = True
        instruction = call_instruction(chat)
        if instruction is not None:
            body["messages"] = with_instruction(body["messages"], instruction)
    form = chat.response_format
    if form is not None and form["type"] == "json_schema":
        body["response_format"] = {"type": "json_object"}
        body["messages"] = with_instruction(
            body["messages"], schema_instruction(form["json_schema"])
        )
    elif form is not None:
        body["response_format"] = {"type": form["type"]}
    return body


def needs_call_reasoning(chat: ChatRequest) -> bool:
    """Whether the model, as asked, refuses a tool-call turn without its reasoning."""
    spec = chat.spec or CATALOGUE.get(chat.model)
    return spec is not None and spec.call_reasoning and spec.thinks(chat.thinking)


def with_call_reasoning(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with ``PLACEHOLDER_REASONING`` on each assistant tool-call turn that has
    no (or empty) ``reasoning_content``; the others as they are."""
    return [
        {**m, "reasoning_content": PLACEHOLDER_REASONING}
        if m["role"] == "assistant" and m.get("tool_calls") and not m.get("reasoning_content")
        else m
        for m in messages
    ]


def offered_tools(chat: ChatRequest) -> list[dict[str, Any]]:
    """The tools as Zhipu takes them: without ``strict``, and only the named function when
    ``tool_choice`` names one."""
    tools = []
    for tool in chat.tools:
        if tool["type"] != "function":
            if chat.tool_choice_name is None:
                tools.append(tool)
            continue
        function = tool["function"]
        if chat.tool_choice_name not in (None, function["name"]):
            continue
        if "strict" in function:
            function = {k: v for k, v in function.items() if k != "strict"}
            tool = {"type": "function", "function": function}
        tools.append(tool)
    return tools


def call_instruction(chat: ChatRequest) -> str | None:
    """The system instruction that asks for a tool call (Zhipu cannot be made to call one)."""
    if chat.tool_choice_name is not None:
        return NAMED_CALL_INSTRUCTION.format(name=chat.tool_choice_name)
    if chat.tool_choice == "required":
        return REQUIRED_CALL_INSTRUCTION
    return None


def schema_instruction(json_schema: dict[str, Any]) -> str:
    """The system instruction that carries a ``json_schema`` response format."""
    name = json_schema.get("name")
    schema = json_schema.get("schema", {"type": "object"})
    return SCHEMA_INSTRUCTION.format(
        name=f" ({name})" if isinstance(name, str) and name else "",
        schema=json.dumps(schema, ensure_ascii=False, sort_keys=True),
    )


def with_instruction(messages: list[dict[str, Any]], instruction: str) -> list[dict[str, Any]]:
    """``messages`` with ``instruction`` added to the leading system message (or as one)."""
    if messages and messages[0]["role"] == "system":
        first = {**messages[0], "content": f"{messages[0]['content']}\n\n{instruction}"}
        return [first, *messages[1:]]
    return [{"role": "system", "content": instruction}, *messages]


def sdk_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``messages`` with each image data URL cut to its base64 (what ``zai-sdk`` does before it
    sends; video and file sources go as given, as the SDK sends them)."""
    return [
        {**m, "content": [_sdk_part(p) for p in m["content"]]}
        if isinstance(m.get("content"), list)
        else m
        for m in messages
    ]


def _sdk_part(part: dict[str, Any]) -> dict[str, Any]:
    if part.get("type") != "image_url":
        return part
    url = part["image_url"]["url"]
    if url[:11].lower() != "data:image/":
        return part
    return {"type": "image_url", "image_url": {"url": url.split("base64,", 1)[-1]}}
