"""The anthropic Python SDK against ``/v1/messages``: answers, streams in the order the SDK
expects, tool round trips with replayed reasoning, images, count_tokens; each checked against
what the fake upstream received and answered."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from anthropic import Anthropic, BadRequestError

from devtools.stack import DevStack
from glm_relay.upstream.translate import PLACEHOLDER_REASONING
from mock_upstream.answer import (
    expected_reasoning_chunks,
    expected_text,
    expected_tool_calls,
)
from mock_upstream.prompt import prompt_tokens
from tests.support.images import b64, png

pytestmark = pytest.mark.usefixtures("upstream_log")
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "The weather in a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_create_answers_with_the_upstream_text_and_usage(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    message = claude.messages.create(
        model="glm-4-flash",
        max_tokens=200,
        system="Be brief.",
        messages=[{"role": "user", "content": "Tell me about rivers"}],
    )
    [body] = sent()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me about rivers"},
    ]
    assert body["max_tokens"] == 200
    assert message.type == "message" and message.role == "assistant"
    assert message.model == "glm-4-flash"
    assert [block.type for block in message.content] == ["text"]
    assert message.content[0].text == expected_text(body)
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens == prompt_tokens(body["messages"])
    assert message.usage.output_tokens > 0


def test_stream_events_arrive_in_the_sdk_order_and_end_with_message_stop(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    with claude.messages.stream(
        model="glm-4-flash",
        max_tokens=100,
        messages=[{"role": "user", "content": "Hello there"}],
    ) as stream:
        kinds = [event.type for event in stream]
        text = stream.get_final_text()
        final = stream.get_final_message()
    [body] = sent()
    assert text == expected_text(body)
    raw = [k for k in kinds if k not in ("text",)]
    assert raw[0] == "message_start"
    assert raw[1] == "content_block_start"
    assert raw[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(raw[2:-3]) == {"content_block_delta"}
    # The first event estimated the input tokens; the final message has the upstream's count.
    assert final.usage.input_tokens == prompt_tokens(body["messages"])
    assert final.stop_reason == "end_turn"


def test_thinking_is_a_signed_block_and_comes_back_as_reasoning_content(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    """A tool round trip on glm-5.1 with thinking on: the thinking block's signature carries
    the reasoning, and the next turn replays it to the upstream on the assistant turn."""
    first = claude.messages.create(
        model="glm-5.1",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "What is the weather? use get_weather"}],
    )
    [body1] = sent()
    assert body1["thinking"] == {"type": "enabled"}
    assert [block.type for block in first.content] == ["thinking", "tool_use"]
    thinking, call = first.content
    reasoning = "".join(expected_reasoning_chunks(body1))
    assert thinking.thinking == reasoning and thinking.signature
    [expected_call] = expected_tool_calls(body1)
    assert call.name == "get_weather" and call.id == expected_call["id"]
    assert call.input == json.loads(expected_call["function"]["arguments"])
    assert first.stop_reason == "tool_use"

    second = claude.messages.create(
        model="glm-5.1",
        max_tokens=4000,
        thinking={"type": "enabled", "budget_tokens": 2048},
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "What is the weather? use get_weather"},
            {"role": "assistant", "content": first.content},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "Sunny"}],
            },
        ],
    )
    body2 = sent()[1]
    assistant, tool = body2["messages"][1:3]
    assert assistant["reasoning_content"] == reasoning
    assert assistant["tool_calls"] == [
        {
            "id": call.id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": json.dumps(call.input)},
        }
    ]
    assert tool == {"role": "tool", "tool_call_id": call.id, "content": "Sunny"}
    assert second.content[-1].type == "text"
    assert second.content[-1].text == expected_text(body2)
    assert second.content[-1].text.startswith('get_weather returned "Sunny".')


def test_a_thinking_block_whose_signature_was_altered_is_dropped(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    claude.messages.create(
        model="glm-5.1",
        max_tokens=500,
        messages=[
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "forged", "signature": "glmr1.Zm9yZ2Vk.AAAA"},
                    {"type": "text", "text": "Hello"},
                ],
            },
            {"role": "user", "content": "Again"},
        ],
    )
    [body] = sent()
    assert body["messages"][1] == {"role": "assistant", "content": "Hello"}


def test_a_resumed_session_s_tool_turn_without_its_thinking_is_answered(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    """What ``claude -c`` sends on glm-5.1: an earlier tool_use turn without its thinking block
    (the placeholder reaches the upstream), then a live one with it (its reasoning does)."""
    question = {"role": "user", "content": "What is the weather? use get_weather"}
    thinking = {"type": "enabled", "budget_tokens": 2048}
    first = claude.messages.create(
        model="glm-5.1",
        max_tokens=4000,
        thinking=thinking,
        tools=[WEATHER_TOOL],
        messages=[question],
    )
    [body1] = sent()
    call = first.content[-1]
    assert [block.type for block in first.content] == ["thinking", "tool_use"]
    resumed = {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}
    answer = claude.messages.create(
        model="glm-5.1",
        max_tokens=4000,
        thinking=thinking,
        tools=[WEATHER_TOOL],
        messages=[
            question,
            {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, resumed]},
            {"role": "user", "content": [tool_result("toolu_01", "Rain")]},
            {"role": "assistant", "content": first.content},
            {"role": "user", "content": [tool_result(call.id, "Sunny")]},
        ],
    )

    body2 = sent()[1]
    earlier, live = body2["messages"][1], body2["messages"][3]
    assert earlier["reasoning_content"] == PLACEHOLDER_REASONING
    assert earlier["tool_calls"][0]["id"] == "toolu_01"
    assert live["reasoning_content"] == "".join(expected_reasoning_chunks(body1))
    assert answer.stop_reason == "end_turn"
    assert answer.content[-1].type == "text" and answer.content[-1].text == expected_text(body2)


def tool_result(tool_use_id: str, text: str) -> dict[str, Any]:
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": text}


def test_streamed_tool_call_arrives_as_input_json_deltas(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    with claude.messages.stream(
        model="glm-5.1",
        max_tokens=1000,
        thinking={"type": "disabled"},
        tools=[WEATHER_TOOL],
        messages=[{"role": "user", "content": "Weather in Paris? use get_weather"}],
    ) as stream:
        events = list(stream)
        final = stream.get_final_message()
    [body] = sent()
    assert body["tool_stream"] is True and body["thinking"] == {"type": "disabled"}
    [expected_call] = expected_tool_calls(body)
    deltas = [e for e in events if e.type == "content_block_delta"]
    assert {d.delta.type for d in deltas} == {"input_json_delta"}
    joined = "".join(d.delta.partial_json for d in deltas)
    assert joined == expected_call["function"]["arguments"]
    [block] = final.content
    assert block.type == "tool_use" and block.input == json.loads(joined)
    assert final.stop_reason == "tool_use"


def test_images_reach_a_vision_model_and_are_refused_by_a_text_model(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    data = b64(png(2, 3))
    content: list[Any] = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": data}},
        {"type": "image", "source": {"type": "url", "url": "https://img.example/cat.png"}},
        {"type": "text", "text": "What is this?"},
    ]
    message = claude.messages.create(
        model="glm-4.6v",
        max_tokens=300,
        thinking={"type": "disabled"},
        messages=[{"role": "user", "content": content}],
    )
    [body] = sent()
    assert body["messages"][0]["content"] == [
        {"type": "image_url", "image_url": {"url": data}},
        {"type": "image_url", "image_url": {"url": "https://img.example/cat.png"}},
        {"type": "text", "text": "What is this?"},
    ]
    assert message.content[0].text.startswith("Image 1: PNG, 2x3 px")
    with pytest.raises(BadRequestError) as refused:
        claude.messages.create(
            model="glm-4-flash", max_tokens=10, messages=[{"role": "user", "content": content}]
        )
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert "unsupported_content" in refused.value.body["error"]["message"]
    assert len(sent()) == 1


def test_count_tokens_matches_what_the_upstream_counts(
    claude: Anthropic, stack: DevStack, client: httpx.Client, sent: Callable[[], list[Any]]
) -> None:
    request: dict[str, Any] = {
        "model": "glm-4-flash",
        "system": "You are a careful assistant, 简洁.",
        "messages": [
            {"role": "user", "content": "How long is the Danube, in kilometres?"},
            {"role": "assistant", "content": "About 2,850 km."},
            {"role": "user", "content": "And the Rhine?"},
        ],
    }
    counted = claude.messages.count_tokens(**request)
    assert sent() == []  # counting never reaches the upstream
    answer = claude.messages.create(max_tokens=50, **request)
    assert counted.input_tokens == answer.usage.input_tokens


def test_any_tool_choice_asks_for_a_call_and_parallel_calls_can_be_turned_off(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    time_tool = {**WEATHER_TOOL, "name": "get_time", "description": "The time in a city"}
    message = claude.messages.create(
        model="glm-4.7",
        max_tokens=500,
        thinking={"type": "disabled"},
        tools=[WEATHER_TOOL, time_tool],
        tool_choice={"type": "any", "disable_parallel_tool_use": True},
        messages=[{"role": "user", "content": "Paris #tool=get_weather,get_time"}],
    )
    [body] = sent()
    assert body["tool_choice"] == "auto"  # Zhipu takes only auto: the call is asked for
    assert body["messages"][0]["role"] == "system"
    assert len(expected_tool_calls(body)) == 2  # the model called both...
    assert [block.type for block in message.content] == ["tool_use"]  # ...one is returned
    assert message.content[0].name == "get_weather"
    assert message.stop_reason == "tool_use"


def test_pings_keep_a_silent_stream_open_and_the_sdk_reads_past_them(
    claude: Anthropic, stack: DevStack, client: httpx.Client, sent: Callable[[], list[Any]]
) -> None:
    # The upstream's first token after 1.2 s: past the stack's 0.5 s keepalive interval.
    ask = [{"role": "user", "content": "Slow start #first=1200 #chunks=3"}]
    body = {"model": "glm-4-flash", "max_tokens": 50, "stream": True, "messages": ask}
    with client.stream(
        "POST", stack.url + "/v1/messages", json=body, headers={"x-api-key": stack.token}
    ) as response:
        raw = response.read().decode()
    names = [line[7:] for line in raw.split("\n") if line.startswith("event: ")]
    assert names[0] == "message_start" and names[1] == "ping"
    assert 'event: ping\ndata: {"type":"ping"}\n\n' in raw
    with claude.messages.stream(model="glm-4-flash", max_tokens=50, messages=ask) as stream:
        assert stream.get_final_text() == expected_text(sent()[-1])


def test_a_pdf_document_reaches_a_vision_model_as_a_file(
    claude: Anthropic, sent: Callable[[], list[Any]]
) -> None:
    pdf = b64(b"%PDF-1.4\n%%EOF\n")
    message = claude.messages.create(
        model="glm-4.6v",
        max_tokens=300,
        thinking={"type": "disabled"},
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {"type": "base64", "media_type": "application/pdf", "data": pdf},
                    },
                    {"type": "text", "text": "Summarise it"},
                ],
            }
        ],
    )
    [body] = sent()
    assert body["messages"][0]["content"][0] == {
        "type": "file",
        "file": {"file_data": f"data:application/pdf;base64,{pdf}"},
    }
    assert message.content[0].text == expected_text(body)
    assert message.content[0].text.startswith("File 1: PDF")
