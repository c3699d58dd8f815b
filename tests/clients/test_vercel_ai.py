"""The Vercel AI SDK (``ai`` + ``@ai-sdk/openai-compatible``, on Node) against ``/v1``: tool
calls in both upstream shapes with the result sent back, structured output, stop words and the
thinking switch. ``node/run.mjs`` runs one scenario and prints what the SDK saw; each test
compares that with what the fake upstream received and answered."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from devtools.stack import DevStack
from mock_upstream.answer import (
    expected_chunks,
    expected_reasoning_chunks,
    expected_text,
    expected_tool_calls,
)
from tests.support.node import needs_node, run_node

pytestmark = needs_node


def run(
    stack: DevStack, node_modules: Path, scenario: str, model: str, prompt: str, *extra: str
) -> Any:
    assert node_modules.is_dir()
    return run_node(stack, "run.mjs", scenario, model, prompt, *extra)


@pytest.mark.parametrize(
    ("scenario", "model", "fragments"),
    [
        ("tool_generate", "glm-4.7", False),  # stream: false upstream-side is still a stream
        ("tool_stream", "glm-4.5", False),  # each call whole in one delta
        ("tool_stream", "glm-4.7", True),  # tool_stream fragments
    ],
)
def test_tool_call_and_result_round_trip(
    stack, sent, node_modules, scenario, model, fragments
) -> None:
    got = run(stack, node_modules, scenario, model, "Weather in Paris #tool=get_weather")

    first, second = sent()
    (expected,) = expected_tool_calls(first)
    assert first.get("tool_stream", False) is (fragments or scenario == "tool_generate")
    assert first["thinking"] == {"type": "disabled"}
    assert got["toolCalls"] == [
        {
            "id": expected["id"],
            "name": "get_weather",
            "input": json.loads(expected["function"]["arguments"]),
        }
    ]
    assert got["toolResults"] == [{"id": expected["id"], "output": "Sunny in Weather in Paris"}]
    assert second["messages"][-1] == {
        "role": "tool",
        "tool_call_id": expected["id"],
        "content": "Sunny in Weather in Paris",
    }
    assert got["finishReasons"] == ["tool-calls", "stop"]
    assert got["text"] == expected_text(second)


def test_structured_output_parses(stack, sent, node_modules) -> None:
    got = run(stack, node_modules, "object", "glm-4-flash", "Say something #chunks=4")

    (body,) = sent()
    assert body["response_format"] == {"type": "json_object"}
    assert got["object"] == {"answer": "".join(expected_chunks({**body, "response_format": None}))}


def test_stop_cuts(stack, sent, node_modules) -> None:
    prompt = "Tell a story #chunks=12"
    full = run(stack, node_modules, "stop", "glm-4-flash", prompt)
    word = full["text"].split()[4]
    cut = run(stack, node_modules, "stop", "glm-4-flash", prompt, word)

    _, body = sent()
    assert body["stop"] == [word]
    assert cut["text"] == expected_text(body) and word not in cut["text"]


@pytest.mark.parametrize(("scenario", "reasons"), [("thinking_on", True), ("thinking_off", False)])
def test_thinking_switches_and_reasoning_is_readable(
    stack, sent, node_modules, scenario, reasons
) -> None:
    got = run(stack, node_modules, scenario, "glm-4.7-flash", "Think about tea #chunks=6")

    (body,) = sent()
    assert body.get("thinking") == (None if reasons else {"type": "disabled"})
    assert (got["reasoning"] or "") == "".join(expected_reasoning_chunks(body))
    assert bool(got["reasoning"]) is reasons
    assert got["text"] == expected_text(body)
