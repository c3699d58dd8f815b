"""What agent frameworks send by default, through openai-python: ``strict`` functions (the
arguments checked), ``tool_choice`` required or named (asked for in an instruction),
``parallel_tool_calls: false`` (the first call only), and GLM-5.1's reasoning replay; each
compared with what the fake upstream received."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from devtools.stack import DevStack
from glm_relay.upstream.translate import PLACEHOLDER_REASONING
from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls
from tests.support.sse_client import read_stream

OFF = {"thinking": {"type": "disabled"}}
REQUIRED = "You must answer by calling one of the provided functions, not with text, in this turn."


class GetWeather(BaseModel):
    """The weather in a city."""

    city: str
    days: int


TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}
STRICT_WEATHER: Any = openai.pydantic_function_tool(GetWeather, name="get_weather")


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def arguments_of(call: Any) -> Any:
    return json.loads(call.function.arguments)


@pytest.mark.parametrize("model", ["glm-4.5", "glm-4.7"])  # whole calls; tool_stream fragments
def test_a_pydantic_function_tool_is_strict_and_its_call_parses(
    oai: OpenAI, sent, model: str
) -> None:
    assert STRICT_WEATHER["function"]["strict"] is True
    with oai.chat.completions.stream(
        model=model,
        messages=ask("Lima get_weather"),
        tools=[STRICT_WEATHER],
        extra_body=OFF,
    ) as stream:
        final = stream.get_final_completion()

    (body,) = sent()
    (call,) = final.choices[0].message.tool_calls or []
    assert body["tools"] == [
        {
            "type": "function",
            "function": {k: v for k, v in STRICT_WEATHER["function"].items() if k != "strict"},
        }
    ]
    assert call.function.parsed_arguments == GetWeather(city="Lima get_weather", days=1)
    assert call.function.arguments == expected_tool_calls(body)[0]["function"]["arguments"]
    assert final.choices[0].finish_reason == "tool_calls"


def test_parse_with_a_strict_tool_whole(oai: OpenAI, sent) -> None:
    completion = oai.chat.completions.parse(
        model="glm-4.7", messages=ask("Quito get_weather"), tools=[STRICT_WEATHER], extra_body=OFF
    )

    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.parsed_arguments == GetWeather(city="Quito get_weather", days=1)
    assert "strict" not in sent()[0]["tools"][0]["function"]


@pytest.mark.parametrize("model", ["glm-4.5", "glm-4.7"])
def test_strict_arguments_that_are_not_json_end_the_stream_with_an_error(
    oai: OpenAI, sent, model: str
) -> None:
    with (
        pytest.raises(openai.APIError) as raised,
        oai.chat.completions.stream(
            model=model,
            messages=ask("Lima get_weather #tool_frames=truncated"),
            tools=[STRICT_WEATHER],
            extra_body=OFF,
        ) as stream,
    ):
        for _ in stream:
            pass

    assert "strict function 'get_weather'" in raised.value.message
    assert getattr(raised.value, "code", None) == "tool_arguments_invalid"
    assert len(sent()) == 1


def test_strict_arguments_that_are_not_json_are_a_502_whole(stack: DevStack, sent) -> None:
    response = httpx.post(
        stack.url + "/v1/chat/completions",
        json={
            "model": "glm-4.7",
            "messages": ask("Lima get_weather #tool_frames=truncated"),
            "tools": [STRICT_WEATHER],
            **OFF,
        },
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=30,
    )

    assert response.status_code == 502
    assert response.headers["x-should-retry"] == "false"
    assert response.json()["error"]["code"] == "tool_arguments_invalid"


def test_arguments_of_a_function_that_is_not_strict_are_passed_as_they_are(
    oai: OpenAI, sent
) -> None:
    plain = {**STRICT_WEATHER, "function": {**STRICT_WEATHER["function"], "strict": False}}
    completion = oai.chat.completions.create(
        model="glm-4.7",
        messages=ask("Lima get_weather #tool_frames=truncated"),
        tools=[plain],
        extra_body=OFF,
    )

    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.arguments == expected_tool_calls(sent()[0])[0]["function"]["arguments"]
    assert completion.choices[0].finish_reason == "tool_calls"


def test_required_is_asked_for_and_the_model_calls(oai: OpenAI, sent) -> None:
    completion = oai.chat.completions.create(
        model="glm-4.7",
        messages=[{"role": "system", "content": "Be brief."}, *ask("Tell me about Paris")],
        tools=[STRICT_WEATHER, TIME],
        tool_choice="required",
        extra_body=OFF,
    )

    (body,) = sent()
    assert (body["tool_choice"], len(body["tools"])) == ("auto", 2)
    assert body["messages"][0] == {"role": "system", "content": f"Be brief.\n\n{REQUIRED}"}
    (call,) = completion.choices[0].message.tool_calls or []
    assert (call.function.name, arguments_of(call)) == (
        "get_weather",
        {"city": "Tell me about Paris", "days": 1},
    )
    assert completion.choices[0].finish_reason == "tool_calls"


def test_required_answered_in_text_anyway_is_text_with_stop(oai: OpenAI, sent) -> None:
    completion = oai.chat.completions.create(
        model="glm-4.7",
        messages=ask("Tell me about Paris #tool=none #chunks=3"),
        tools=[STRICT_WEATHER],
        tool_choice="required",
        extra_body=OFF,
    )

    (body,) = sent()
    message = completion.choices[0].message
    assert (message.content, message.tool_calls) == (expected_text(body), None)
    assert completion.choices[0].finish_reason == "stop"


def test_a_named_function_is_offered_alone_and_called(oai: OpenAI, sent) -> None:
    completion = oai.chat.completions.create(
        model="glm-4.7",
        messages=ask("Tell me about Paris get_weather"),
        tools=[STRICT_WEATHER, TIME],
        tool_choice={"type": "function", "function": {"name": "get_time"}},
        extra_body=OFF,
    )

    (body,) = sent()
    assert body["tools"] == [TIME]
    assert body["tool_choice"] == "auto"
    assert body["messages"][0]["content"] == (
        "You must answer by calling the function get_time, not with text, in this turn."
    )
    (call,) = completion.choices[0].message.tool_calls or []
    assert (call.function.name, arguments_of(call)) == (
        "get_time",
        {"zone": "Tell me about Paris get_weather"},
    )


@pytest.mark.parametrize("model", ["glm-4.5", "glm-4.7"])  # one delta with both; fragments
def test_parallel_tool_calls_false_streams_only_the_first_call(
    oai: OpenAI, sent, model: str
) -> None:
    with oai.chat.completions.stream(
        model=model,
        messages=ask("Both please #tool=get_weather,get_time"),
        tools=[STRICT_WEATHER, TIME],
        parallel_tool_calls=False,
        extra_body=OFF,
    ) as stream:
        deltas = [
            call
            for event in stream
            if event.type == "chunk" and event.chunk.choices
            for call in event.chunk.choices[0].delta.tool_calls or ()
        ]
        final = stream.get_final_completion()

    (body,) = sent()
    assert "parallel_tool_calls" not in body
    first, second = expected_tool_calls(body)
    (call,) = final.choices[0].message.tool_calls or []
    assert (call.id, call.function.arguments) == (first["id"], first["function"]["arguments"])
    assert {d.index for d in deltas} == {0}
    assert second["id"] not in {d.id for d in deltas}
    assert final.choices[0].finish_reason == "tool_calls"


def test_parallel_tool_calls_false_whole(oai: OpenAI, sent) -> None:
    completion = oai.chat.completions.create(
        model="glm-4.7",
        messages=ask("Both please #tool=get_time,get_weather"),
        tools=[STRICT_WEATHER, TIME],
        parallel_tool_calls=False,
        extra_body=OFF,
    )

    (call,) = completion.choices[0].message.tool_calls or []
    assert call.function.name == "get_time"
    assert len(expected_tool_calls(sent()[0])) == 2


def chat_on_glm_4_7(
    stack: DevStack, client: httpx.Client, messages: list[dict[str, Any]], **fields: Any
) -> Any:
    """``POST /chat`` on glm-4.7 with thinking off and ``fields``, read to its terminal event."""
    return read_stream(
        client,
        "POST",
        stack.url + "/chat",
        json={"model": "glm-4.7", "messages": messages, **fields, **OFF},
        headers={"Authorization": f"Bearer {stack.token}"},
    )


def test_parallel_tool_calls_false_on_chat_keeps_the_first_tool_call_event(
    stack: DevStack, client: httpx.Client, sent
) -> None:
    result = chat_on_glm_4_7(
        stack,
        client,
        ask("Both please #tool=get_weather,get_time"),
        tools=[STRICT_WEATHER, TIME],
        parallel_tool_calls=False,
    )

    (call,) = [e.json for e in result.events if e.event == "tool_call"]
    fragments = [e.json for e in result.events if e.event == "tool_call_delta"]
    assert (call["index"], call["function"]["name"]) == (0, "get_weather")
    assert {f["index"] for f in fragments} == {0}
    assert result.terminal.event == "done" and result.only_terminal_is_last()
    assert result.terminal.json["finish_reason"] == "tool_calls"
    assert len(sent()) == 1


def test_strict_arguments_that_are_not_json_end_a_chat_stream_with_an_error_event(
    stack: DevStack, client: httpx.Client, sent
) -> None:
    result = chat_on_glm_4_7(
        stack, client, ask("Lima get_weather #tool_frames=truncated"), tools=[STRICT_WEATHER]
    )

    assert result.names.count("tool_call") == 0  # never shown as a complete call
    assert result.terminal.event == "error" and result.only_terminal_is_last()
    assert result.terminal.json["code"] == "tool_arguments_invalid"


def test_glm_5_1_agent_turn_works_when_the_reasoning_is_sent_back(oai: OpenAI, sent) -> None:
    question = ask("Weather in Lima get_weather")
    with oai.chat.completions.stream(
        model="glm-5.1", messages=question, tools=[STRICT_WEATHER]
    ) as stream:
        message = stream.get_final_completion().choices[0].message
    (call,) = message.tool_calls or []
    reasoning = getattr(message, "reasoning_content", None)
    history = [
        *question,
        message.model_dump(exclude_none=True, exclude={"parsed"}),
        {"role": "tool", "tool_call_id": call.id, "content": "Cloudy"},
    ]
    answer = oai.chat.completions.create(model="glm-5.1", messages=history, tools=[STRICT_WEATHER])

    one, two = sent()
    assert reasoning and reasoning == "".join(expected_reasoning_chunks(one))
    assert two["messages"][1]["reasoning_content"] == reasoning
    assert answer.choices[0].message.content == expected_text(two)


def _call_turn(call_id: str, city: str, **reasoning: str) -> dict[str, Any]:
    """An assistant tool-call turn as a client sends it back, with ``reasoning`` if given."""
    function = {"name": "get_weather", "arguments": json.dumps({"city": city})}
    call = {"id": call_id, "type": "function", "function": function}
    return {"role": "assistant", "content": None, "tool_calls": [call], **reasoning}


@pytest.mark.parametrize("dropped", [{}, {"reasoning_content": ""}], ids=["absent", "empty"])
def test_glm_5_1_turn_without_its_reasoning_gets_the_placeholder(
    oai: OpenAI, sent, dropped: dict[str, str]
) -> None:
    """A client that drops ``reasoning_content`` (not an OpenAI field) still gets its answer:
    the turn without it carries the placeholder, the turn with it its own reasoning."""
    history = [
        *ask("Weather in Lima and Quito"),
        _call_turn("call_1", "Lima", **dropped),
        {"role": "tool", "tool_call_id": "call_1", "content": "Cloudy"},
        _call_turn("call_2", "Quito", reasoning_content="Now Quito."),
        {"role": "tool", "tool_call_id": "call_2", "content": "Rain"},
    ]
    answer = oai.chat.completions.create(model="glm-5.1", messages=history, tools=[STRICT_WEATHER])

    (body,) = sent()
    assert body["messages"][1]["reasoning_content"] == PLACEHOLDER_REASONING
    assert body["messages"][3]["reasoning_content"] == "Now Quito."
    assert body["messages"][1]["tool_calls"] == history[1]["tool_calls"]
    assert answer.choices[0].message.content == expected_text(body)


def test_without_thinking_or_before_glm_5_1_the_turn_goes_as_sent(oai: OpenAI, sent) -> None:
    history = [
        *ask("Weather in Lima"),
        _call_turn("call_1", "Lima"),
        {"role": "tool", "tool_call_id": "call_1", "content": "Cloudy"},
    ]
    oai.chat.completions.create(
        model="glm-5.1", messages=history, tools=[STRICT_WEATHER], extra_body=OFF
    )
    oai.chat.completions.create(model="glm-5", messages=history, tools=[STRICT_WEATHER])

    for body in sent():
        assert "reasoning_content" not in body["messages"][1]
