"""Function calling: when the model calls, both stream shapes, the non-stream body, tool results."""

from __future__ import annotations

import json
from typing import Any

import pytest
from upstream_support import body, chunks, content_of, post

from mock_upstream.answer import (
    expected_chunks,
    expected_text,
    expected_tool_call_deltas,
    expected_tool_calls,
)
from mock_upstream.prompt import split_tokens
from mock_upstream.testing import MockUpstream
from mock_upstream.tools import fill_schema

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
                "days": {"type": "integer", "minimum": 1, "maximum": 7},
                "verbose": {"type": "boolean"},
            },
            "required": ["city", "unit", "days"],
        },
    },
}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object"}}}
TOOLS = [WEATHER, TIME]


def _stream(upstream: MockUpstream, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = post(upstream.base_url, request)
    assert response.status_code == 200, response.text
    return chunks(response.content)


def _tool_deltas(parsed: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [
        c["choices"][0]["delta"]["tool_calls"]
        for c in parsed
        if "tool_calls" in c["choices"][0]["delta"]
    ]


def test_directive_makes_one_complete_call_with_schema_arguments(upstream: MockUpstream) -> None:
    request = body("What about Paris? #tool=get_weather", tools=TOOLS)
    parsed = _stream(upstream, request)

    (delta,) = _tool_deltas(parsed)
    (call,) = delta
    assert delta == expected_tool_calls(request) == expected_tool_call_deltas(request)[0]
    assert list(call) == ["id", "index", "type", "function"]
    assert call["id"].startswith("call_") and call["index"] == 0 and call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    arguments = json.loads(call["function"]["arguments"])
    assert arguments == {"city": "What about Paris?", "unit": "celsius", "days": 1}
    assert content_of(parsed) == []
    assert len(parsed) == 2
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"
    usage = parsed[-1]["usage"]
    assert usage["completion_tokens"] == len(split_tokens("get_weather")) + len(
        split_tokens(call["function"]["arguments"])
    )


def test_mentioning_a_function_name_calls_it(upstream: MockUpstream) -> None:
    request = body("please use get_time now", tools=TOOLS)
    (call,) = expected_tool_calls(request)
    assert call["function"] == {"name": "get_time", "arguments": "{}"}
    (delta,) = _tool_deltas(_stream(upstream, request))
    assert delta == [call]


def test_two_mentioned_functions_are_two_calls_in_one_delta(upstream: MockUpstream) -> None:
    request = body("get_time and get_weather in Oslo", tools=TOOLS)
    (delta,) = _tool_deltas(_stream(upstream, request))

    assert [c["function"]["name"] for c in delta] == ["get_weather", "get_time"]
    assert [c["index"] for c in delta] == [0, 1]
    assert len({c["id"] for c in delta}) == 2
    assert delta == expected_tool_calls(request)


def test_directive_order_and_none(upstream: MockUpstream) -> None:
    both = body("x #tool=get_time,get_weather", tools=TOOLS)
    assert [c["function"]["name"] for c in expected_tool_calls(both)] == ["get_time", "get_weather"]
    silent = body("use get_weather #tool=none #chunks=3", tools=TOOLS)
    parsed = _stream(upstream, silent)
    assert _tool_deltas(parsed) == [] and len(content_of(parsed)) == 3
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


def test_no_call_without_tools_or_a_mention(upstream: MockUpstream) -> None:
    assert expected_tool_calls(body("get_weather please")) == []
    assert expected_tool_calls(body("weather please", tools=TOOLS)) == []
    assert expected_tool_calls(body("get_weathers please", tools=TOOLS)) == []


def test_directive_naming_an_unknown_function_is_refused(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, body("x #tool=get_news", tools=TOOLS))

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "1214"
    assert error["message"].startswith("mock_upstream directive: #tool=get_news names no")


def test_tool_stream_sends_head_then_argument_fragments(upstream: MockUpstream) -> None:
    request = body("Rome? #tool=get_weather", model="glm-4.6", tools=TOOLS, tool_stream=True)
    parsed = _stream(upstream, request)

    deltas = _tool_deltas(parsed)
    assert deltas == expected_tool_call_deltas(request)
    (head,), *fragments = deltas
    (whole,) = expected_tool_calls(request)
    assert head == {
        "id": whole["id"],
        "index": 0,
        "type": "function",
        "function": {"name": "get_weather"},
    }
    assert all(
        d == [{"index": 0, "function": {"arguments": d[0]["function"]["arguments"]}}]
        for d in fragments
    )
    pieces = [d[0]["function"]["arguments"] for d in fragments]
    assert pieces == split_tokens(whole["function"]["arguments"]) and len(pieces) > 5
    assert json.loads("".join(pieces)) == {"city": "Rome?", "unit": "celsius", "days": 1}
    assert parsed[-1]["choices"][0]["finish_reason"] == "tool_calls"
    # The reasoning of a thinking model comes first.
    assert content_of(parsed, "reasoning_content")
    assert "tool_calls" not in parsed[0]["choices"][0]["delta"]


def test_tool_stream_with_two_calls_finishes_one_index_before_the_next(
    upstream: MockUpstream,
) -> None:
    request = body("x #tool=get_time,get_weather", model="glm-5.3", tools=TOOLS, tool_stream=True)
    deltas = _tool_deltas(_stream(upstream, request))

    indexes = [d[0]["index"] for d in deltas]
    assert indexes == sorted(indexes) and set(indexes) == {0, 1}
    joined: dict[int, str] = {}
    for (delta,) in deltas:
        joined[delta["index"]] = joined.get(delta["index"], "") + delta["function"].get(
            "arguments", ""
        )
    assert [joined[0], joined[1]] == [
        c["function"]["arguments"] for c in expected_tool_calls(request)
    ]


def test_tool_stream_on_an_older_model_sends_whole_calls(upstream: MockUpstream) -> None:
    request = body("x #tool=get_time", model="glm-4.5", tools=TOOLS, tool_stream=True)
    assert _tool_deltas(_stream(upstream, request)) == [expected_tool_calls(request)]


def test_non_stream_body_carries_the_calls_without_index(upstream: MockUpstream) -> None:
    request = body("x #tool=get_weather,get_time", stream=False, tools=TOOLS)
    answer = post(upstream.base_url, request).json()

    choice = answer["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["tool_calls"] == [
        {k: v for k, v in call.items() if k != "index"} for call in expected_tool_calls(request)
    ]
    assert choice["message"]["content"] == ""


def test_tool_results_are_quoted_in_the_next_answer(upstream: MockUpstream) -> None:
    first = body("Weather in Oslo? #tool=get_weather #chunks=4", tools=TOOLS)
    (call,) = expected_tool_calls(first)
    follow_up = {
        **first,
        "messages": [
            *first["messages"],
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": call["id"], "content": '{"temp": "-3C"}'},
        ],
    }
    parsed = _stream(upstream, follow_up)

    text = "".join(content_of(parsed))
    assert text.startswith('get_weather returned "{"temp": "-3C"}". ')
    assert text == expected_text(follow_up)
    assert _tool_deltas(parsed) == []
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"
    words = expected_chunks(body("Weather in Oslo? #chunks=4"))
    assert text.endswith(" " + "".join(words))


def test_several_tool_results_are_quoted_in_order() -> None:
    request = body(
        "both? #chunks=1",
        messages=[
            {"role": "user", "content": "both? #chunks=1"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"id": "a", "type": "function", "function": {"name": "one", "arguments": "{}"}},
                    {"id": "b", "type": "function", "function": {"name": "two", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "a", "content": "1"},
            {"role": "tool", "tool_call_id": "b", "content": "2"},
        ],
    )
    assert expected_text(request).startswith('one returned "1". two returned "2".')


def test_chinese_tool_result_quote() -> None:
    request = body(
        "天气?",
        messages=[
            {"role": "user", "content": "北京天气? #chunks=2"},
            {"role": "tool", "tool_call_id": "c9", "content": "晴"},
        ],
    )
    assert expected_text(request).startswith("tool 返回“晴”。")


def test_fault_tool_call_without_tools_calls_lookup(upstream: MockUpstream) -> None:
    request = body("find it #fault=tool_call")
    (call,) = expected_tool_calls(request)
    assert call["function"] == {"name": "lookup", "arguments": '{"query": "find it"}'}


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        ({"type": "string"}, "T"),
        ({"type": "integer"}, 1),
        ({"type": "integer", "minimum": 5}, 5),
        ({"type": "integer", "maximum": 0}, 0),
        ({"type": "number"}, 1.5),
        ({"type": "boolean"}, True),
        ({"type": ["null", "integer"]}, 1),
        ({"enum": ["a", "b"]}, "a"),
        ({"const": 3}, 3),
        ({"type": "array", "items": {"type": "integer"}, "minItems": 2}, [1, 1]),
        (
            {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}},
            {"a": "T", "b": 1},
        ),
        (
            {
                "type": "object",
                "properties": {"a": {"type": "string"}, "b": {"type": "integer"}},
                "required": ["b"],
            },
            {"b": 1},
        ),
    ],
)
def test_fill_schema_values(schema: dict, value: Any) -> None:
    assert fill_schema(schema, "T") == value


def test_tool_frames_repeat_puts_id_and_name_on_every_fragment(upstream: MockUpstream) -> None:
    request = body("x #tool=get_weather #tool_frames=repeat", model="glm-4.7", tools=TOOLS)
    request.update(tool_stream=True, thinking={"type": "disabled"})
    deltas = _tool_deltas(_stream(upstream, request))

    assert deltas == expected_tool_call_deltas(request)
    (whole,) = expected_tool_calls(request)
    for (delta,) in deltas[1:]:
        assert {k: delta[k] for k in ("id", "index", "type")} == {
            "id": whole["id"],
            "index": 0,
            "type": "function",
        }
        assert delta["function"]["name"] == "get_weather"
    assert (
        "".join(d[0]["function"]["arguments"] for d in deltas[1:])
        == (whole["function"]["arguments"])
    )


def test_tool_frames_on_finish_sends_the_last_fragment_on_the_finish_chunk(
    upstream: MockUpstream,
) -> None:
    request = body("x #tool=get_time #tool_frames=on_finish", model="glm-4.7", tools=TOOLS)
    request.update(tool_stream=True, thinking={"type": "disabled"})
    parsed = _stream(upstream, request)

    last = parsed[-1]["choices"][0]
    assert last["finish_reason"] == "tool_calls"
    assert last["delta"] == {
        "role": "assistant",
        "tool_calls": [{"index": 0, "function": {"arguments": "}"}}],
    }
    deltas = _tool_deltas(parsed)
    assert deltas == expected_tool_call_deltas(request)
    assert "".join(d[0]["function"].get("arguments", "") for d in deltas) == "{}"
    assert upstream.requests()[-1]["chunks_sent"] == len(deltas)
    assert parsed[-1]["usage"]["completion_tokens"] == 1 + 2  # "get_time", then "{" and "}"


def test_bad_tool_frames_value_is_refused(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, body("x #tool_frames=sideways", tools=TOOLS))
    assert response.json()["error"]["message"].startswith(
        "mock_upstream directive: #tool_frames takes on_finish, repeat"
    )


def test_args_directive_sets_string_arguments_over_the_filled_ones(upstream: MockUpstream) -> None:
    request = body("Weather? #tool=get_weather&args=city:/srv/Paris,note:a:b", tools=TOOLS)
    parsed = _stream(upstream, request)

    ((call,),) = _tool_deltas(parsed)
    assert [call] == expected_tool_calls(request)
    arguments = json.loads(call["function"]["arguments"])
    # The value runs to the next comma (colons kept); names the schema lacks are added.
    assert arguments == {"city": "/srv/Paris", "unit": "celsius", "days": 1, "note": "a:b"}


@pytest.mark.parametrize("word", ["#args=city", "#args=:x", "#args="])
def test_a_bad_args_directive_is_refused(upstream: MockUpstream, word: str) -> None:
    response = post(upstream.base_url, body(f"x #tool=get_weather {word}", tools=TOOLS))

    assert response.status_code == 400
    assert response.json()["error"]["message"].startswith("mock_upstream directive: #args")
