"""Anthropic request fields as the relay's ChatRequest: the rules of ``web/anthropic/request.py``
and ``blocks.py`` (system turns, tool results, signed thinking, tools, thinking and effort per
model, top_k, context_management) and ``MODEL_ALIASES``."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from glm_relay.chat.models import aliased
from glm_relay.chat.sealed import ReasoningSeal
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.web.anthropic.endpoints import unsealer
from glm_relay.web.anthropic.request import parse_messages_request

SETTINGS = Settings.from_env({})
SEAL = ReasoningSeal(b"k" * 32)
UNSEAL = unsealer(SEAL)
ASK = [{"role": "user", "content": "Hi"}]


def parse(**fields: Any) -> Any:
    body = {"model": "glm-5.1", "max_tokens": 4000, "messages": ASK, **fields}
    return parse_messages_request(body, SETTINGS, UNSEAL)


def refused(**fields: Any) -> RelayError:
    with pytest.raises(RelayError) as raised:
        parse(**fields)
    return raised.value


def test_system_blocks_and_system_turns_become_one_leading_system_message() -> None:
    call = parse(
        system=[{"type": "text", "text": "A", "cache_control": {"type": "ephemeral"}}],
        messages=[
            {
                "role": "user",
                "content": [{"type": "text", "text": "x"}, {"type": "text", "text": "y"}],
            },
            {"role": "system", "content": "B", "output_config": {"effort": "low"}},
        ],
    )
    assert call.chat.messages == [
        {"role": "system", "content": "A\n\nB"},
        {"role": "user", "content": "x\ny"},
    ]


def test_tool_results_come_first_and_errors_say_so() -> None:
    call = parse(
        messages=[
            {"role": "user", "content": "Go"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t1", "name": "f", "input": {"a": 1}}],
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "and then?"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": "boom",
                        "is_error": True,
                    },
                ],
            },
        ]
    )
    assert call.chat.messages[1:] == [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"id": "t1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
            ],
        },
        {"role": "tool", "tool_call_id": "t1", "content": "Error: boom"},
        {"role": "user", "content": "and then?"},
    ]


def test_an_image_in_a_tool_result_is_named_for_the_model() -> None:
    from tests.support.images import b64, png

    image = {"type": "base64", "media_type": "image/png", "data": b64(png(2, 3))}
    call = parse(
        messages=[
            {"role": "user", "content": "Look"},
            {
                "role": "assistant",
                "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t",
                        "content": [
                            {"type": "text", "text": "shot:"},
                            {"type": "image", "source": image},
                        ],
                    }
                ],
            },
        ]
    )
    result = call.chat.messages[-1]
    assert result["role"] == "tool"
    assert result["content"].startswith("shot:\n[image: image/png, ")
    assert result["content"].endswith("(not shown: a tool result reaches the model as text)")


def test_documents_are_file_parts_for_a_vision_model_and_text_sources_are_text() -> None:
    pdf = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
    blocks = [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
        },
        {"type": "document", "source": {"type": "url", "url": "https://files.example/a.pdf"}},
        {
            "type": "document",
            "source": {"type": "text", "media_type": "text/plain", "data": "Notes"},
        },
        {"type": "text", "text": "Summarise"},
    ]
    call = parse(model="glm-4.6v", messages=[{"role": "user", "content": blocks}])
    assert call.chat.messages[0]["content"] == [
        {"type": "file", "file": {"file_data": f"data:application/pdf;base64,{pdf}"}},
        {"type": "file", "file": {"file_url": "https://files.example/a.pdf"}},
        {"type": "text", "text": "Notes"},
        {"type": "text", "text": "Summarise"},
    ]
    text_model = refused(messages=[{"role": "user", "content": blocks}])
    assert text_model.code is ErrorCode.UNSUPPORTED_CONTENT  # glm-5.1 takes text only
    titled = {**blocks[1], "title": "A"}
    assert refused(model="glm-4.6v", messages=[{"role": "user", "content": [titled]}]).code is (
        ErrorCode.INVALID_MESSAGES
    )


def test_only_signed_thinking_is_replayed() -> None:
    signed = {
        "type": "thinking",
        "thinking": "",
        "signature": SEAL.seal("glm-5.1", "real reasoning"),
    }
    forged = {"type": "thinking", "thinking": "edited", "signature": "glmr1.eA.AAAA"}
    redacted = {"type": "redacted_thinking", "data": SEAL.seal("glm-5", "more")}
    for blocks, replayed in (([signed, redacted], "real reasoning\nmore"), ([forged], None)):
        call = parse(
            messages=[
                {"role": "user", "content": "Q"},
                {"role": "assistant", "content": [*blocks, {"type": "text", "text": "A"}]},
                {"role": "user", "content": "Q2"},
            ]
        )
        assert call.chat.messages[1].get("reasoning_content") == replayed


def test_anthropic_tool_types_are_dropped_and_client_tools_kept() -> None:
    call = parse(
        tools=[
            {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},
            {"type": "bash_20250124", "name": "bash"},
            {"name": "Read", "input_schema": {"type": "object"}, "defer_loading": True},
        ]
    )
    assert call.chat.tools == (
        {"type": "function", "function": {"name": "Read", "parameters": {"type": "object"}}},
    )


@pytest.mark.parametrize(
    ("choice", "expected", "name", "parallel"),
    [
        ({"type": "auto"}, "auto", None, True),
        ({"type": "none"}, None, None, True),
        ({"type": "any"}, "required", None, True),
        ({"type": "tool", "name": "f", "disable_parallel_tool_use": True}, "required", "f", False),
    ],
)
def test_tool_choice(
    choice: dict[str, Any], expected: str | None, name: str | None, parallel: bool
) -> None:
    tools = [{"name": "f", "input_schema": {"type": "object"}}]
    call = parse(tools=tools, tool_choice=choice)
    chat = call.chat
    assert (chat.tool_choice, chat.tool_choice_name, chat.parallel_tool_calls) == (
        expected,
        name,
        parallel,
    )
    assert bool(chat.tools) is (expected is not None)


@pytest.mark.parametrize(
    ("model", "fields", "thinking", "effort"),
    [
        (
            "glm-5.1",
            {"thinking": {"type": "adaptive"}, "output_config": {"effort": "high"}},
            "enabled",
            None,
        ),
        ("glm-5.2", {"thinking": {"type": "enabled", "budget_tokens": 2000}}, "enabled", "low"),
        (
            "glm-5.2",
            {"max_tokens": 30000, "thinking": {"type": "enabled", "budget_tokens": 20000}},
            "enabled",
            "high",
        ),
        ("glm-5.3", {"output_config": {"effort": "medium"}}, None, "high"),
        (
            "glm-5.2",
            {"thinking": {"type": "disabled"}, "output_config": {"effort": "max"}},
            "disabled",
            None,
        ),
        ("glm-4-flash", {"thinking": {"type": "adaptive"}}, None, None),
    ],
)
def test_thinking_and_effort_per_model(
    model: str, fields: dict[str, Any], thinking: str | None, effort: str | None
) -> None:
    call = parse(model=model, **fields)
    assert (call.chat.thinking, call.chat.reasoning_effort) == (thinking, effort)


def test_context_management_keeps_or_clears_thinking() -> None:
    keep = {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]}
    call = parse(thinking={"type": "adaptive"}, context_management=keep)
    assert call.chat.clear_thinking is False
    tool_edit = {"edits": [{"type": "clear_tool_uses_20250919"}]}
    assert refused(context_management=tool_edit).code is ErrorCode.UNSUPPORTED_PARAMETER


def test_null_fields_are_not_set() -> None:
    call = parse(container=None, top_k=None, metadata=None, thinking=None)
    assert call.chat.do_sample is None and call.chat.user_id is None


def test_sampling_fields_metadata_and_stop_sequences() -> None:
    call = parse(
        temperature=0.2,
        top_p=0.9,
        top_k=1,
        stop_sequences=["END"],
        metadata={"user_id": "person-42"},
    )
    chat = call.chat
    assert (chat.temperature, chat.top_p, chat.do_sample, chat.stop, chat.user_id) == (
        0.2,
        0.9,
        False,
        ("END",),
        "person-42",
    )
    assert refused(top_k=5).code is ErrorCode.UNSUPPORTED_PARAMETER


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"max_tokens": None}, ErrorCode.INVALID_PARAMETER),
        ({"container": "x"}, ErrorCode.UNKNOWN_PARAMETER),
        (
            {"messages": [{"role": "user", "content": [{"type": "document"}]}]},
            ErrorCode.UNSUPPORTED_CONTENT,
        ),
        ({"messages": [{"role": "user", "content": "x", "name": "n"}]}, ErrorCode.INVALID_MESSAGES),
        ({"thinking": {"type": "sometimes"}}, ErrorCode.INVALID_PARAMETER),
        (
            {"max_tokens": 2000, "thinking": {"type": "enabled", "budget_tokens": 2000}},
            ErrorCode.INVALID_PARAMETER,
        ),
        ({"output_config": {"effort": "extreme"}}, ErrorCode.INVALID_PARAMETER),
    ],
)
def test_bad_fields_are_refused_with_a_code(fields: dict[str, Any], code: ErrorCode) -> None:
    assert refused(**fields).code is code


def test_model_aliases_default_to_claude_code_names_and_can_be_replaced() -> None:
    assert aliased(SETTINGS, "claude-opus-5-5") == "glm-5.1"
    assert aliased(SETTINGS, "claude-sonnet-4-5-20250929") == "glm-5.1"
    assert aliased(SETTINGS, "claude-haiku-4-5") == "glm-4.7-flash"
    assert aliased(SETTINGS, "claude-3-7-sonnet-latest") == "glm-5.1"
    assert aliased(SETTINGS, "glm-4.6") == "glm-4.6"
    mine = Settings.from_env({"MODEL_ALIASES": "fast=glm-4.7-flash,big*=glm-5.2"})
    assert aliased(mine, "fast") == "glm-4.7-flash" and aliased(mine, "big-one") == "glm-5.2"
    assert aliased(mine, "claude-opus-5-5") == "claude-opus-5-5"  # the defaults are replaced
    as_json = Settings.from_env({"MODEL_ALIASES": '{"claude-*": "glm-4.6"}'})
    assert aliased(as_json, "claude-haiku-4-5") == "glm-4.6"
    for bad in ("a=", "=b", "nothing", '["x"]'):
        with pytest.raises(ValueError):
            Settings.from_env({"MODEL_ALIASES": bad})


def test_an_alias_of_a_model_that_is_not_allowed_says_so() -> None:
    settings = Settings.from_env({"ALLOWED_MODELS": "glm-4.7-flash"})
    with pytest.raises(RelayError) as raised:
        parse_messages_request(
            {"model": "claude-opus-5-5", "max_tokens": 10, "messages": ASK}, settings, UNSEAL
        )
    assert raised.value.code is ErrorCode.MODEL_NOT_ALLOWED
    assert "an alias of 'glm-5.1'" in raised.value.message
