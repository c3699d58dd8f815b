"""The Anthropic TypeScript SDK (``@anthropic-ai/sdk``, on Node) against ``/v1/messages``: a
streamed answer and a tool round trip with thinking on. ``node/anthropic.mjs`` runs one scenario
and prints what the SDK saw; each test compares it with what the fake upstream got and sent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from devtools.stack import DevStack
from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls
from tests.support.node import needs_node, run_node

pytestmark = needs_node


def run(stack: DevStack, node_modules: Path, scenario: str, model: str, prompt: str) -> Any:
    assert node_modules.is_dir()
    return run_node(stack, "anthropic.mjs", scenario, model, prompt)


def test_streamed_answer_has_the_event_order_and_text(stack, sent, node_modules) -> None:
    got = run(stack, node_modules, "stream", "glm-4-flash", "Tell me about lakes")

    [body] = sent()
    assert got["text"] == expected_text(body)
    events = got["events"]
    assert events[:2] == ["message_start", "content_block_start"]
    assert events[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert got["stopReason"] == "end_turn"
    assert got["usage"]["output_tokens"] > 0


def test_tool_round_trip_replays_the_reasoning(stack, sent, node_modules) -> None:
    got = run(stack, node_modules, "tool_round_trip", "glm-5.1", "Weather? #tool=get_weather")

    first, second = sent()
    [expected] = expected_tool_calls(first)
    assert got["firstBlocks"] == ["thinking", "tool_use"]
    assert got["call"] == {
        "id": expected["id"],
        "name": "get_weather",
        "input": json.loads(expected["function"]["arguments"]),
    }
    assistant, result = second["messages"][1:]
    assert assistant["reasoning_content"] == "".join(expected_reasoning_chunks(first))
    assert assistant["tool_calls"][0]["id"] == expected["id"]
    city = got["call"]["input"]["city"]
    assert result == {"role": "tool", "tool_call_id": expected["id"], "content": f"Sunny in {city}"}
    assert got["stopReasons"] == ["tool_use", "end_turn"]
    assert got["text"] == expected_text(second)
