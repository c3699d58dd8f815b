"""Tools, thinking, structured output, stop and finish reasons through openai-python (sync,
async, stream), each compared with what the fake upstream received and answered."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from pydantic import BaseModel

from devtools.stack import DevStack
from mock_upstream.answer import (
    expected_chunks,
    expected_reasoning_chunks,
    expected_text,
    expected_tool_calls,
)

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city", "days"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"zone": {"type": "string"}}},
    },
}


def ask(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


def calls_of(message: Any) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id,
            "type": c.type,
            "function": {"name": c.function.name, "arguments": c.function.arguments},
        }
        for c in message.tool_calls or ()
    ]


def without_index(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in call.items() if k != "index"} for call in calls]


@pytest.mark.parametrize(
    ("model", "frames"),
    [
        ("glm-4.5", ""),  # no tool_stream: each call whole in one delta
        ("glm-4.7", ""),  # tool_stream: a head, then argument fragments
        ("glm-4.7", "repeat"),  # id and name repeated on every fragment
        ("glm-4.7", "on_finish"),  # the last fragment rides on the finish chunk
        ("glm-4.7", "repeat,on_finish"),
    ],
)
def test_streamed_tool_calls_arrive_whole(oai: OpenAI, sent, model: str, frames: str) -> None:
    directive = f" #tool_frames={frames}" if frames else ""
    with oai.chat.completions.stream(
        model=model,
        messages=ask(f"Weather and time please #tool=get_weather,get_time{directive}"),
        tools=[WEATHER, TIME],  # type: ignore[list-item]
        extra_body={"thinking": {"type": "disabled"}},
    ) as stream:
        chunks = list(stream)
        final = stream.get_final_completion()

    (body,) = sent()
    assert body["tool_choice"] == "auto"
    assert body.get("tool_stream", False) is (model == "glm-4.7")
    expected = without_index(expected_tool_calls(body))
    assert len(expected) == 2
    assert calls_of(final.choices[0].message) == expected
    assert final.choices[0].finish_reason == "tool_calls"
    # Each call's id and name appear once, on its first delta, as OpenAI sends them.
    deltas = [
        call
        for event in chunks
        if event.type == "chunk" and event.chunk.choices
        for call in event.chunk.choices[0].delta.tool_calls or ()
    ]
    assert [d.index for d in deltas if d.id] == [0, 1]
    assert [d.function.name for d in deltas if d.function and d.function.name] == [
        "get_weather",
        "get_time",
    ]


async def test_async_stream_tool_call_and_usage(async_oai: AsyncOpenAI, sent) -> None:
    stream = await async_oai.chat.completions.create(
        model="glm-4.7",
        messages=ask("Weather in Rome #tool=get_weather"),
        tools=[WEATHER],  # type: ignore[list-item]
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"thinking": {"type": "disabled"}},
    )
    arguments, usage = "", None
    async for chunk in stream:
        if chunk.usage:
            usage = chunk.usage
        for call in (chunk.choices[0].delta.tool_calls or ()) if chunk.choices else ():
            arguments += call.function.arguments or "" if call.function else ""

    (body,) = sent()
    (call,) = expected_tool_calls(body)
    assert json.loads(arguments) == json.loads(call["function"]["arguments"])
    assert usage is not None and usage.completion_tokens > 0


def test_whole_answer_tool_round_trip(oai: OpenAI, sent) -> None:
    first = oai.chat.completions.create(
        model="glm-4.7-flash",
        messages=ask("Weather in Lima #tool=get_weather"),
        tools=[WEATHER],  # type: ignore[list-item]
    )
    message = first.choices[0].message
    (call,) = message.tool_calls or []
    history: list[Any] = [
        *ask("Weather in Lima #tool=get_weather"),
        message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Cloudy, 18 C"},
    ]
    second = oai.chat.completions.create(model="glm-4.7-flash", messages=history, tools=[WEATHER])  # type: ignore[list-item]

    one, two = sent()
    assert first.choices[0].finish_reason == "tool_calls"
    assert calls_of(message) == without_index(expected_tool_calls(one))
    reasoning = getattr(message, "reasoning_content", None)
    assert reasoning == "".join(expected_reasoning_chunks(one))
    assert two["messages"][1] == {
        "role": "assistant",
        "content": "",
        "tool_calls": calls_of(message),
        "reasoning_content": reasoning,
    }
    assert two["messages"][2] == {
        "role": "tool",
        "tool_call_id": call.id,
        "content": "Cloudy, 18 C",
    }
    assert second.choices[0].message.content == expected_text(two)
    assert (second.choices[0].message.content or "").startswith(
        'get_weather returned "Cloudy, 18 C".'
    )


@pytest.mark.parametrize(
    ("extra", "thinking", "reasons"),
    [
        ({}, None, True),
        ({"extra_body": {"thinking": {"type": "disabled"}}}, {"type": "disabled"}, False),
        ({"reasoning_effort": "none"}, {"type": "disabled"}, False),
    ],
)
def test_thinking_switches(
    oai: OpenAI, sent, extra: dict[str, Any], thinking: Any, reasons: bool
) -> None:
    completion = oai.chat.completions.create(
        model="glm-4.7-flash", messages=ask("Think about tea #chunks=6"), **extra
    )

    (body,) = sent()
    assert body.get("thinking") == thinking
    reasoning = getattr(completion.choices[0].message, "reasoning_content", None)
    assert bool(reasoning) is reasons
    assert (reasoning or "") == "".join(expected_reasoning_chunks(body))


@pytest.mark.parametrize(
    ("model", "effort", "sent_effort"),
    [("glm-5.3", "low", "low"), ("glm-5.3", "xhigh", "max"), ("glm-5.2", "medium", "medium")],
)
def test_reasoning_effort_is_mapped_per_model(
    oai: OpenAI, sent, model, effort, sent_effort
) -> None:
    oai.chat.completions.create(model=model, messages=ask("Hi #chunks=2"), reasoning_effort=effort)

    (body,) = sent()
    assert body["reasoning_effort"] == sent_effort


@pytest.mark.parametrize(
    ("model", "extra", "words"),
    [
        ("glm-5.3", {"reasoning_effort": "medium"}, "glm-5.3 takes low, high, max"),
        ("glm-4-flash", {"reasoning_effort": "high"}, "glm-4-flash does not reason"),
        ("glm-5.3", {"extra_body": {"thinking": {"type": "disabled"}}}, "cannot be turned off"),
    ],
)
def test_reasoning_the_model_cannot_take_is_refused(oai: OpenAI, sent, model, extra, words) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        oai.chat.completions.create(model=model, messages=ask("Hi"), **extra)

    assert raised.value.code == "unsupported_parameter"
    assert words in raised.value.message
    assert sent() == []


class Answer(BaseModel):
    answer: str


def test_structured_output_parses(oai: OpenAI, sent) -> None:
    completion = oai.chat.completions.parse(
        model="glm-4-flash", messages=ask("Say something #chunks=5"), response_format=Answer
    )

    (body,) = sent()
    assert body["response_format"] == {"type": "json_object"}
    (instruction, _) = body["messages"]
    assert instruction["role"] == "system" and '"answer"' in instruction["content"]
    parsed = completion.choices[0].message.parsed
    assert parsed is not None and parsed.answer == "".join(
        expected_chunks({**body, "response_format": None})
    )


def test_stop_cuts_the_answer(oai: OpenAI, sent) -> None:
    full = oai.chat.completions.create(model="glm-4-flash", messages=ask("Tell a story #chunks=12"))
    word = (full.choices[0].message.content or "").split()[5]
    cut = oai.chat.completions.create(
        model="glm-4-flash", messages=ask("Tell a story #chunks=12"), stop=[word, "zzz"]
    )

    _, body = sent()
    assert body["stop"] == [word, "zzz"]
    assert cut.choices[0].message.content == expected_text(body)
    assert word not in (cut.choices[0].message.content or "")
    assert cut.choices[0].finish_reason == "stop"


@pytest.mark.parametrize(
    ("fault", "reason"),
    [("sensitive", "content_filter"), ("model_context_window_exceeded", "length")],
)
def test_finish_reasons_are_openai_s(oai: OpenAI, sent, fault: str, reason: str) -> None:
    question = ask(f"Go on #chunks=8 #after=3 #fault={fault}")
    chunks = list(oai.chat.completions.create(model="glm-4-flash", messages=question, stream=True))
    whole = oai.chat.completions.create(model="glm-4-flash", messages=question)

    assert chunks[-1].choices[0].finish_reason == reason
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(
        expected_chunks(sent()[0])[:3]
    )
    assert whole.choices[0].finish_reason == reason
    assert whole.choices[0].message.content == "".join(expected_chunks(sent()[1])[:3])


@pytest.mark.parametrize("fault", ["network_error", "error_frame"])
def test_in_stream_failures_raise_in_the_sdk(oai: OpenAI, sent, fault: str) -> None:
    stream = oai.chat.completions.create(
        model="glm-4-flash", messages=ask(f"Go #chunks=8 #after=2 #fault={fault}"), stream=True
    )
    with pytest.raises(openai.APIError) as raised:
        list(stream)

    assert "upstream" in raised.value.message
    assert len(sent()) == 1


def test_one_sdk_call_costs_at_most_one_round_of_retries(stack: DevStack, sent) -> None:
    # Default SDK settings (2 retries); the upstream refuses every time.
    with OpenAI(base_url=stack.url + "/v1", api_key=stack.token, timeout=30) as client:
        assert client.max_retries == 2
        with pytest.raises(openai.RateLimitError):
            client.chat.completions.create(
                model="glm-4-flash", messages=ask("Busy #fault=rate_limit #times=1000")
            )

    assert stack.app is not None
    assert len(sent()) == stack.app.settings.retry_attempts <= 4


def test_an_effort_on_a_model_that_reasons_at_one_depth_turns_thinking_on(
    oai: OpenAI, sent
) -> None:
    completion = oai.chat.completions.create(
        model="glm-4.7", messages=ask("Hi #chunks=2"), reasoning_effort="high"
    )

    (body,) = sent()
    assert body["thinking"] == {"type": "enabled"} and "reasoning_effort" not in body
    assert completion.choices[0].message.content == expected_text(body)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        (
            "tools",
            '[{"type": "function", "function": {"name": "f", "parameters": {"a": "\\ud800"}}}]',
        ),
        ("response_format", '{"type": "json_schema", "json_schema": {"schema": {"a": "\\udfff"}}}'),
    ],
)
def test_a_schema_utf_8_cannot_hold_is_refused_before_the_upstream(
    refusal_of, sent, field: str, value: str
) -> None:
    messages = '[{"role": "user", "content": "hi"}]'
    body = f'{{"model": "glm-4.7", "messages": {messages}, "{field}": {value}}}'
    error = refusal_of("/v1/chat/completions", body)
    assert error["code"] == "invalid_parameter" and error["param"] == field
    assert "unpaired surrogate" in error["message"]
    assert sent() == []
