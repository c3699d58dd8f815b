"""``/chat`` speaks the current API too: thinking switches (GET query and POST field), tools
with streamed arguments as ``tool_call_delta`` events and complete ``tool_call`` events, tool
history, and the finish reasons of the upstream, with what reached the upstream checked."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from devtools.stack import DevStack
from mock_upstream.answer import (
    expected_chunks,
    expected_reasoning_chunks,
    expected_tool_call_deltas,
    expected_tool_calls,
)
from tests.support.sse_client import StreamResult, read_stream
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def get(stack: DevStack, client: httpx.Client, question: str, **params: str) -> StreamResult:
    query = "&".join(f"{k}={quote(v)}" for k, v in {"q": question, **params}.items())
    return read_stream(client, "GET", f"{stack.url}/chat?{query}&access_token={stack.token}")


def post(stack: DevStack, client: httpx.Client, body: dict[str, Any]) -> StreamResult:
    headers = {"Authorization": f"Bearer {stack.token}"}
    return read_stream(client, "POST", f"{stack.url}/chat", json=body, headers=headers)


@pytest.mark.parametrize(
    ("params", "thinking", "reasons"),
    [
        ({}, None, True),  # glm-4.7-flash reasons by default
        ({"thinking": "off"}, {"type": "disabled"}, False),
        ({"thinking": "on"}, {"type": "enabled"}, True),
    ],
)
def test_get_thinking_switch(stack, client, params, thinking, reasons) -> None:
    result = get(stack, client, "Why is the sky blue #chunks=4", model="glm-4.7-flash", **params)

    (body,) = upstream_bodies(stack, client)
    assert body.get("thinking") == thinking
    got = [e.json["content"] for e in result.events if e.event == "reasoning"]
    assert got == expected_reasoning_chunks(body)
    assert bool(got) is reasons
    assert result.text == "".join(expected_chunks(body))
    assert result.terminal.event == "done"


def test_get_reasoning_effort_for_glm_5_3(stack, client) -> None:
    result = get(stack, client, "Plan a trip #chunks=8", model="glm-5.3", reasoning_effort="low")

    (body,) = upstream_bodies(stack, client)
    assert body["reasoning_effort"] == "low"
    assert "thinking" not in body
    reasoning = [e.json["content"] for e in result.events if e.event == "reasoning"]
    assert reasoning == expected_reasoning_chunks(body) and reasoning


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"model": "glm-5.3", "thinking": "off"}, "unsupported_parameter"),
        ({"model": "glm-5.3", "reasoning_effort": "turbo"}, "unsupported_parameter"),
        ({"model": "glm-4-flash", "thinking": "on"}, "unsupported_parameter"),
        ({"model": "glm-4.7", "thinking": "maybe"}, "invalid_parameter"),
    ],
)
def test_get_thinking_the_model_cannot_take_is_refused(stack, client, params, code) -> None:
    result = get(stack, client, "Hello", **params)

    assert result.names == ["error"]
    assert result.terminal.json["code"] == code
    assert upstream_bodies(stack, client) == []


@pytest.mark.parametrize("frames", ["", "repeat", "on_finish", "repeat,on_finish"])
def test_post_streamed_tool_call_gives_deltas_then_the_whole_call(stack, client, frames) -> None:
    directive = f" #tool_frames={frames}" if frames else ""
    question = f"What is the weather in Paris #tool=get_weather{directive}"
    result = post(
        stack,
        client,
        {
            "model": "glm-4.7",
            "messages": [{"role": "user", "content": question}],
            "tools": [WEATHER],
        },
    )

    (body,) = upstream_bodies(stack, client)
    assert body["tools"] == [WEATHER]
    assert (body["tool_choice"], body["tool_stream"]) == ("auto", True)
    deltas = [e.json for e in result.events if e.event == "tool_call_delta"]
    upstream_fragments = sum(len(d) for d in expected_tool_call_deltas(body))
    assert len(deltas) == upstream_fragments > 2
    assert [("id" in d, "name" in d) for d in deltas] == [(True, True)] + [(False, False)] * (
        len(deltas) - 1
    )
    (call,) = expected_tool_calls(body)
    assert deltas[0]["id"] == call["id"] and deltas[0]["name"] == "get_weather"
    assert "".join(d["arguments"] for d in deltas) == call["function"]["arguments"]
    whole = [e.json for e in result.events if e.event == "tool_call"]
    assert whole == [call]
    assert result.names[-2:] == ["tool_call", "done"]
    assert result.terminal.json["finish_reason"] == "tool_calls"


def test_post_tool_call_on_a_model_without_tool_stream_is_one_event(stack, client) -> None:
    question = "Weather in Oslo #tool=get_weather"
    result = post(
        stack,
        client,
        {
            "model": "glm-4.5",
            "messages": [{"role": "user", "content": question}],
            "tools": [WEATHER],
            "thinking": "off",
        },
    )

    (body,) = upstream_bodies(stack, client)
    assert "tool_stream" not in body
    assert [e.json for e in result.events if e.event == "tool_call"] == expected_tool_calls(body)
    assert result.names == ["meta", "tool_call", "done"]


def test_post_tool_history_reaches_the_upstream(stack, client) -> None:
    call = {
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": json.dumps({"city": "Paris"})},
    }
    messages = [
        {"role": "user", "content": "Weather in Paris? #chunks=3"},
        {"role": "assistant", "content": None, "tool_calls": [call], "reasoning_content": "Ask."},
        {"role": "tool", "tool_call_id": "call_1", "content": "Sunny, 21 C"},
    ]
    result = post(
        stack,
        client,
        {"model": "glm-4.7-flash", "messages": messages, "tools": [WEATHER], "thinking": "off"},
    )

    (body,) = upstream_bodies(stack, client)
    assert body["messages"] == [
        messages[0],
        {"role": "assistant", "content": "", "tool_calls": [call], "reasoning_content": "Ask."},
        messages[2],
    ]
    assert result.text.startswith('get_weather returned "Sunny, 21 C".')
    assert result.text == "".join(expected_chunks(body))


@pytest.mark.parametrize(
    ("fault", "terminal", "reason"),
    [
        ("model_context_window_exceeded", "done", "model_context_window_exceeded"),
        ("sensitive", "error", "content_filtered"),
        ("network_error", "error", "upstream_network_error"),
    ],
)
def test_finish_reasons_on_chat(stack, client, fault, terminal, reason) -> None:
    result = get(stack, client, f"Go #chunks=6 #after=2 #fault={fault}")

    assert result.terminal.event == terminal
    key = "finish_reason" if terminal == "done" else "code"
    assert result.terminal.json[key] == reason
    assert result.names.count("chat") == 2
