"""The AI SDK's default OpenAI provider (``openai(model)`` from ``@ai-sdk/openai``), which speaks
the Responses API with stored responses: a tool round trip, streamed and not, on a model that
reasons. Its second step names the first step's items by id (``item_reference``); the relay
reads them from the stored response, so the tool-call turn goes back with its reasoning."""

from __future__ import annotations

import json

import pytest

from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls
from tests.support.node import needs_node, run_node

pytestmark = needs_node


@pytest.mark.parametrize("mode", ["generate", "stream"])
def test_tool_round_trip_on_the_default_provider(stack, sent, node_modules, mode) -> None:
    got = run_node(stack, "responses.mjs", mode, "glm-5.1", "Weather in Paris #tool=get_weather")

    first, second = sent()
    (expected,) = expected_tool_calls(first)
    assert [tool["function"]["name"] for tool in first["tools"]] == ["get_weather"]
    assert got["toolCalls"] == [
        {
            "id": expected["id"],
            "name": "get_weather",
            "input": json.loads(expected["function"]["arguments"]),
        }
    ]
    turn, result = second["messages"][-2:]
    assert turn["tool_calls"][0]["id"] == expected["id"]
    assert turn["reasoning_content"] == "".join(expected_reasoning_chunks(first))
    assert result == {
        "role": "tool",
        "tool_call_id": expected["id"],
        "content": "Sunny in Weather in Paris",
    }
    assert got["finishReasons"] == ["tool-calls", "stop"]
    assert got["text"] == expected_text(second)
