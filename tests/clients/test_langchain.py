"""LangChain's ``ChatOpenAI`` with ``bind_tools``: a tool round trip, streamed and not."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessageChunk, HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI

from devtools.stack import DevStack
from mock_upstream.answer import expected_text, expected_tool_calls


@tool
def get_weather(city: str) -> str:
    """The weather in a city."""
    return f"Sunny in {city}"


def chat_model(stack: DevStack, model: str) -> ChatOpenAI:
    return ChatOpenAI(
        model=model, base_url=stack.url + "/v1", api_key=stack.token, max_retries=0, timeout=30
    )


@pytest.mark.parametrize(("model", "streamed"), [("glm-4.5", False), ("glm-4.7", True)])
def test_bind_tools_round_trip(stack: DevStack, sent, model: str, streamed: bool) -> None:
    bound = chat_model(stack, model).bind_tools([get_weather])
    question = HumanMessage("Weather in Paris please #tool=get_weather")
    if streamed:
        chunks = list(bound.stream([question]))
        ai = chunks[0]
        for chunk in chunks[1:]:
            ai = ai + chunk
        assert isinstance(ai, AIMessageChunk) and len(chunks) > 3
    else:
        ai = bound.invoke([question])
    (call,) = ai.tool_calls
    result = get_weather.invoke(call)
    final = bound.invoke([question, ai, result])

    first, second = sent()
    (expected,) = expected_tool_calls(first)
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first.get("tool_stream", False) is streamed
    assert call["id"] == expected["id"] and call["name"] == "get_weather"
    assert call["args"] == json.loads(expected["function"]["arguments"])
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": expected["id"],
        "content": "Sunny in Weather in Paris please",
    }
    assert second["messages"][-2]["tool_calls"][0]["id"] == expected["id"]
    assert final.content == expected_text(second)
    assert str(final.content).startswith('get_weather returned "Sunny in Weather in Paris please".')
