"""GLM's rules for agents: a tool-call turn must come back with its reasoning (GLM-5.1 and later,
thinking on), only function, web_search and retrieval tools exist, `tool_choice` is only "auto";
and the model obeys a system instruction that demands a call."""

from __future__ import annotations

import json
from typing import Any

import pytest
from upstream_support import body, chunks, post

from mock_upstream.answer import expected_reasoning_chunks, expected_tool_calls
from mock_upstream.testing import MockUpstream

MISSING = "thinking is enabled but reasoning_content is missing in assistant tool call message"
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ANSWER = {"type": "function", "function": {"name": "final_answer", "parameters": {}}}
CALL = {
    "id": "call_1",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
}
REPLAYING_MODELS = ("glm-5.1", "glm-5.2", "glm-5.3", "glm-5.3-flash", "glm-5.3-flashx")


def _history(model: str, assistant: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A second agent turn: the question, the model's call, the tool's result."""
    return {
        **body("Weather in Paris? #chunks=3", model=model, tools=[WEATHER]),
        "messages": [
            {"role": "user", "content": "Weather in Paris? #chunks=3"},
            {"role": "assistant", "content": None, "tool_calls": [CALL], **assistant},
            {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        ],
        **fields,
    }


@pytest.mark.parametrize("model", REPLAYING_MODELS)
@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("reasoning", [None, ""], ids=["absent", "empty"])
def test_a_tool_call_turn_without_its_reasoning_is_refused_on_glm_5_1_and_later(
    upstream: MockUpstream, model: str, stream: bool, reasoning: str | None
) -> None:
    assistant = {} if reasoning is None else {"reasoning_content": reasoning}
    response = post(upstream.base_url, _history(model, assistant, stream=stream))

    assert response.status_code == 400, response.text
    assert response.json() == {"error": {"code": "1214", "message": MISSING}}
    record = upstream.requests()[-1]
    assert (record["status"], record["error_code"]) == (400, "1214")


@pytest.mark.parametrize(
    ("model", "assistant", "fields"),
    [
        ("glm-5.1", {"reasoning_content": "I should look it up."}, {}),
        ("glm-5.3", {"reasoning_content": "I should look it up."}, {}),
        ("glm-5.1", {}, {"thinking": {"type": "disabled"}}),
        ("glm-5.2", {}, {"thinking": {"type": "disabled"}}),
        ("glm-5", {}, {}),
        ("glm-4.7", {}, {}),
        ("glm-4-flash", {}, {}),
    ],
    ids=["5.1-replayed", "5.3-replayed", "5.1-thinking-off", "5.2-thinking-off", "5", "4.7", "4"],
)
def test_the_turn_is_accepted_with_its_reasoning_thinking_off_or_before_glm_5_1(
    upstream: MockUpstream, model: str, assistant: dict[str, Any], fields: dict[str, Any]
) -> None:
    response = post(upstream.base_url, _history(model, assistant, **fields))
    assert response.status_code == 200, response.text


def test_a_glm_5_1_call_streams_the_reasoning_that_makes_the_next_turn_work(
    upstream: MockUpstream,
) -> None:
    first = body("Weather in Paris? get_weather #chunks=4", model="glm-5.1", tools=[WEATHER])
    parsed = chunks(post(upstream.base_url, first).content)
    deltas = [c["choices"][0]["delta"] for c in parsed if c["choices"]]
    reasoning = "".join(d.get("reasoning_content", "") for d in deltas)
    (call,) = [c for d in deltas for c in d.get("tool_calls", ())]
    thinking_at = [i for i, d in enumerate(deltas) if "reasoning_content" in d]
    calling_at = [i for i, d in enumerate(deltas) if "tool_calls" in d]

    assert reasoning == "".join(expected_reasoning_chunks(first)) != ""
    assert call == expected_tool_calls(first)[0]
    assert max(thinking_at) < min(calling_at)  # the reasoning comes first
    replay = {
        **first,
        "messages": [
            *first["messages"],
            {
                "role": "assistant",
                "content": "",
                "reasoning_content": reasoning,
                "tool_calls": [{k: v for k, v in call.items() if k != "index"}],
            },
            {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
        ],
    }
    second = post(upstream.base_url, replay)
    assert second.status_code == 200, second.text
    assert "get_weather returned" in "".join(
        c["choices"][0]["delta"].get("content", "") for c in chunks(second.content)
    )


@pytest.mark.parametrize(
    "kind", ["code_interpreter", "file_search", "namespace", "custom", "local_shell", "mcp"]
)
def test_tool_types_zhipu_lacks_are_illegal(upstream: MockUpstream, kind: str) -> None:
    response = post(upstream.base_url, body(tools=[WEATHER, {"type": kind, kind: {}}]))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "1214"
    assert error["message"].startswith("Invalid tools[1].type parameter: type is illegal")


@pytest.mark.parametrize(
    "choice",
    [
        "required",
        "none",
        {"type": "function", "function": {"name": "get_weather"}},
        {"type": "auto"},
        "AUTO",
    ],
)
def test_tool_choice_other_than_auto_is_refused(upstream: MockUpstream, choice: Any) -> None:
    response = post(upstream.base_url, body(tools=[WEATHER], tool_choice=choice))

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "1214"
    assert response.json()["error"]["message"].startswith("Invalid tool_choice parameter")


def _calls(upstream: MockUpstream, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = post(upstream.base_url, {**request, "stream": False})
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"].get("tool_calls") or []


def _demanding(instruction: str, text: str = "Tell me about Paris") -> dict[str, Any]:
    return {
        **body(text, tools=[WEATHER, ANSWER]),
        "messages": [
            {"role": "system", "content": f"Be brief.\n\n{instruction}"},
            {"role": "user", "content": text},
        ],
    }


def test_a_demanded_named_call_is_made_without_a_mention(upstream: MockUpstream) -> None:
    request = _demanding("You must answer by calling the function final_answer, not with text.")
    (call,) = _calls(upstream, request)
    assert call["function"] == {"name": "final_answer", "arguments": "{}"}


def test_a_demanded_call_of_any_function_takes_the_first_not_yet_called(
    upstream: MockUpstream,
) -> None:
    request = _demanding("You must answer by calling one of the provided functions.")
    (first,) = _calls(upstream, request)
    assert first["function"]["name"] == "get_weather"
    assert json.loads(first["function"]["arguments"]) == {"city": "Tell me about Paris"}

    request["messages"] += [
        {"role": "assistant", "content": None, "tool_calls": [first]},
        {"role": "tool", "tool_call_id": first["id"], "content": "sunny"},
    ]
    (second,) = _calls(upstream, request)
    assert second["function"]["name"] == "final_answer"


def test_a_model_told_not_to_call_answers_in_text_despite_the_demand(
    upstream: MockUpstream,
) -> None:
    request = _demanding(
        "You must answer by calling one of the provided functions.", "Hi #tool=none"
    )
    response = post(upstream.base_url, {**request, "stream": False})

    choice = response.json()["choices"][0]
    assert (choice["finish_reason"], "tool_calls" in choice["message"]) == ("stop", False)
    assert choice["message"]["content"]


@pytest.mark.parametrize("stream", [True, False])
def test_truncated_arguments_are_not_json(upstream: MockUpstream, stream: bool) -> None:
    request = body("Paris get_weather #tool_frames=truncated", tools=[WEATHER], stream=stream)
    (call,) = expected_tool_calls(request)
    response = post(upstream.base_url, request)
    if stream:
        arguments = "".join(
            c["function"]["arguments"]
            for chunk in chunks(response.content)
            for c in chunk["choices"][0]["delta"].get("tool_calls", ())
        )
    else:
        (sent,) = response.json()["choices"][0]["message"]["tool_calls"]
        arguments = sent["function"]["arguments"]

    assert arguments == call["function"]["arguments"] == '{"city": "Paris get_weather"'
    with pytest.raises(ValueError):
        json.loads(arguments)
