"""The Responses API through openai-python: ``responses.create`` and ``responses.stream``, tool
round trips through ``previous_response_id`` and through returned items (``store=False``, sealed
reasoning), stored responses (GET, DELETE, another user's id); each compared with what the fake
upstream received and answered."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from typing import Any

import openai
import pytest
from openai import OpenAI
from pydantic import BaseModel

from devtools.events import function_url_event
from devtools.stack import DevStack
from glm_relay.access import TokenLimits, mint_access_token
from glm_relay.runtime import InvocationContext, now_ms
from glm_relay.upstream.translate import PLACEHOLDER_REASONING
from glm_relay.web.app import WebApp
from mock_upstream.answer import (
    expected_reasoning_chunks,
    expected_text,
    expected_tool_calls,
    expected_web_search,
)
from tests.support.upstream import DEFAULT_SEARCH_TOOL

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def test_create_answers_with_a_message_item_and_usage(oai: OpenAI, sent) -> None:
    response = oai.responses.create(
        model="glm-4-flash", input="Tell me about otters", instructions="Be brief."
    )

    (body,) = sent()
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Tell me about otters"},
    ]
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.output_text == expected_text(body)
    (item,) = response.output
    assert item.type == "message" and item.role == "assistant" and item.status == "completed"
    assert response.usage is not None and response.usage.output_tokens > 0
    assert response.instructions == "Be brief."


def test_stream_events_arrive_in_order_and_end_with_completed(oai: OpenAI, sent) -> None:
    with oai.responses.stream(model="glm-5.1", input="Tell me about otters") as stream:
        events = list(stream)
        final = stream.get_final_response()

    (body,) = sent()
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    reasoning = "".join(
        e.delta for e in events if e.type == "response.reasoning_summary_text.delta"
    )
    assert reasoning == "".join(expected_reasoning_chunks(body))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == expected_text(body) == final.output_text
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert kinds.index("response.reasoning_summary_text.done") < kinds.index(
        "response.content_part.added"
    )
    assert final.usage is not None and final.usage.output_tokens_details.reasoning_tokens > 0


def _call_of(response: Any) -> Any:
    (call,) = [item for item in response.output if item.type == "function_call"]
    return call


def test_function_tool_round_trip_through_previous_response_id(oai: OpenAI, sent) -> None:
    first = oai.responses.create(
        model="glm-4.7", input="Weather in Paris #tool=get_weather", tools=[WEATHER]
    )
    call = _call_of(first)
    second = oai.responses.create(
        model="glm-4.7",
        previous_response_id=first.id,
        tools=[WEATHER],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )

    asked, followed = sent()
    (expected,) = expected_tool_calls(asked)
    assert asked["tools"] == [
        {"type": "function", "function": {k: v for k, v in WEATHER.items() if k != "type"}}
    ]
    assert call.name == "get_weather" and call.call_id == expected["id"]
    assert json.loads(call.arguments) == json.loads(expected["function"]["arguments"])
    turn = followed["messages"][-2]
    assert followed["messages"][0] == {"role": "user", "content": asked["messages"][0]["content"]}
    assert turn["role"] == "assistant" and turn["tool_calls"][0]["id"] == call.call_id
    assert turn["reasoning_content"]  # glm-4.7 reasons by default: replayed from the store
    assert followed["messages"][-1] == {
        "role": "tool",
        "tool_call_id": call.call_id,
        "content": "sunny",
    }
    assert second.output_text.startswith('get_weather returned "sunny".')


def test_store_false_round_trip_replays_the_sealed_reasoning(oai: OpenAI, sent) -> None:
    common: dict[str, Any] = {
        "model": "glm-5.1",
        "tools": [WEATHER],
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "reasoning": {"summary": "auto"},
    }
    first = oai.responses.create(input="Weather in Paris #tool=get_weather", **common)
    reasoning = next(item for item in first.output if item.type == "reasoning")
    call = _call_of(first)
    assert first.store is False and reasoning.encrypted_content
    items = [
        {"role": "user", "content": "Weather in Paris #tool=get_weather"},
        *[item.model_dump(exclude_none=True) for item in first.output],
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    second = oai.responses.create(input=items, **common)

    asked, followed = sent()
    thought = "".join(expected_reasoning_chunks(asked))
    assert reasoning.summary[0].text == thought
    turn = followed["messages"][1]
    assert turn["reasoning_content"] == thought
    assert turn["tool_calls"][0]["id"] == call.call_id
    assert second.output_text.endswith(expected_text(followed))
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(first.id)

    tampered = [dict(i) for i in items]
    tampered[1]["encrypted_content"] = reasoning.encrypted_content[:-4] + "AAAA"
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(input=tampered, **common)
    assert refused.value.code == "invalid_parameter"
    assert len(sent()) == 2  # the tampered one never reached the upstream


def test_a_function_call_without_its_reasoning_item_is_answered(oai: OpenAI, sent) -> None:
    """A stateless client that keeps no reasoning items (no ``include``) sends the call and its
    output back on glm-5.1: the turn reaches the upstream with the placeholder."""
    common: dict[str, Any] = {"model": "glm-5.1", "tools": [WEATHER], "store": False}
    first = oai.responses.create(input="Weather in Paris #tool=get_weather", **common)
    call = _call_of(first)
    items = [
        {"role": "user", "content": "Weather in Paris #tool=get_weather"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    second = oai.responses.create(input=items, **common)

    asked, followed = sent()
    assert "".join(expected_reasoning_chunks(asked))  # the model reasoned before calling
    turn = followed["messages"][1]
    assert turn["reasoning_content"] == PLACEHOLDER_REASONING
    assert turn["tool_calls"][0]["id"] == call.call_id
    assert second.status == "completed"
    assert second.output_text.endswith(expected_text(followed))


def test_stored_response_is_read_deleted_and_hidden_from_other_users(
    oai: OpenAI, stack: DevStack, sent
) -> None:
    created = oai.responses.create(model="glm-4-flash", input="Tell me about otters")
    assert created.store is True
    again = oai.responses.retrieve(created.id)
    assert again.id == created.id and again.output_text == created.output_text

    other = mint_access_token("someone-else", 600, stack.access_token_secret)
    with OpenAI(base_url=stack.url + "/v1", api_key=other, max_retries=0) as stranger:
        with pytest.raises(openai.NotFoundError) as hidden:
            stranger.responses.retrieve(created.id)
        assert hidden.value.code == "not_found"
        with pytest.raises(openai.NotFoundError):
            stranger.responses.create(
                model="glm-4-flash", input="more", previous_response_id=created.id
            )
        with pytest.raises(openai.NotFoundError):
            stranger.responses.delete(created.id)

    oai.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        oai.responses.retrieve(created.id)
    assert len(sent()) == 1


def test_unknown_fields_are_refused_before_the_upstream(oai: OpenAI, sent) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(model="glm-4-flash", input="hi", extra_body={"frobnicate": True})
    assert refused.value.code == "unknown_parameter"
    assert refused.value.response.headers["x-should-retry"] == "false"
    assert sent() == []


@pytest.mark.parametrize(
    ("fault", "terminal", "detail"),
    [
        ("length", "response.incomplete", {"reason": "max_output_tokens"}),
        ("sensitive", "response.incomplete", {"reason": "content_filter"}),
        ("network_error", "response.failed", {"code": "upstream_network_error"}),
        ("drop", "response.failed", {"code": "upstream_disconnected"}),
        ("stall", "response.failed", {"code": "upstream_stalled"}),
        ("error_frame", "response.failed", {"code": "upstream_error"}),
    ],
)
def test_every_stream_ends_with_one_terminal_event_that_says_how(
    stack: DevStack, client, sent, fault: str, terminal: str, detail: dict[str, str]
) -> None:
    response = client.post(
        stack.url + "/v1/responses",
        json={"model": "glm-4-flash", "stream": True, "input": f"Hi #chunks=8 #fault={fault}"},
        headers={"Authorization": f"Bearer {stack.token}"},
    )

    blocks = [b for b in response.text.split("\n\n") if b and not b.startswith(":")]
    data = [json.loads(b.split("\ndata: ", 1)[1]) for b in blocks]
    kinds = [d["type"] for d in data]
    ends = {"response.completed", "response.incomplete", "response.failed"}
    assert kinds[-1] == terminal and sum(kind in ends for kind in kinds) == 1
    final = data[-1]["response"]
    got = final["incomplete_details"] if terminal == "response.incomplete" else final["error"]
    assert {k: got[k] for k in detail} == detail
    assert len(sent()) == 1


def test_a_failed_answer_not_streamed_is_an_openai_error(oai: OpenAI, sent) -> None:
    with pytest.raises(openai.APIStatusError) as failed:
        oai.responses.create(model="glm-4-flash", input="Hi #chunks=8 #fault=network_error")
    assert failed.value.status_code == 502
    assert failed.value.body["code"] == "upstream_network_error"  # type: ignore[index]
    assert failed.value.response.headers["x-should-retry"] == "false"
    incomplete = oai.responses.create(
        model="glm-4-flash", input="Hi #chunks=8", max_output_tokens=3
    )
    assert incomplete.status == "incomplete"
    assert incomplete.incomplete_details is not None
    assert incomplete.incomplete_details.reason == "max_output_tokens"
    assert len(sent()) == 2


async def test_without_a_table_nothing_is_stored_and_follow_ups_are_refused(
    stack: DevStack, sent
) -> None:
    assert stack.app is not None
    settings = replace(stack.app.settings, conversations_table="", require_access_token=False)
    app = WebApp(settings)

    async def post(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        event = function_url_event(
            "POST", "/v1/responses", {"content-type": "application/json"}, json.dumps(body).encode()
        )
        response = await app.handle(event, InvocationContext("no-table", now_ms() + 30_000))
        data = b"".join([chunk async for chunk in response.body])
        return response.status_code, json.loads(data)

    status, answer = await post({"model": "glm-4-flash", "input": "Hi #chunks=2"})
    assert status == 200 and answer["store"] is False and answer["status"] == "completed"
    status, refused = await post(
        {"model": "glm-4-flash", "input": "More", "previous_response_id": answer["id"]}
    )
    assert status == 400 and refused["error"]["code"] == "conversations_disabled"
    assert refused["error"]["param"] == "previous_response_id"
    assert len(sent()) == 1


def test_web_search_runs_upstream_and_comes_back_as_a_web_search_call_item(
    oai: OpenAI, sent
) -> None:
    response = oai.responses.create(
        model="glm-4-flash", input="Otters in the news", tools=[{"type": "web_search"}]
    )

    (body,) = sent()
    assert body["tools"] == [DEFAULT_SEARCH_TOOL]
    search, message = response.output
    assert search.type == "web_search_call" and search.status == "completed"
    sources = search.action.sources  # type: ignore[union-attr]
    assert [s.url for s in sources or ()] == [r["link"] for r in expected_web_search(body) or ()]
    assert message.type == "message" and response.output_text == expected_text(body)


def test_an_image_goes_to_a_vision_model_as_an_image_part(oai: OpenAI, sent) -> None:
    image = {"type": "input_image", "image_url": "https://img.example/otter.png"}
    oai.responses.create(
        model="glm-4.6v",
        input=[
            {"role": "user", "content": [{"type": "input_text", "text": "What is this?"}, image]}
        ],
    )

    (body,) = sent()
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is this?"},
                {"type": "image_url", "image_url": {"url": "https://img.example/otter.png"}},
            ],
        }
    ]


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"input": []}, "invalid_messages", "input must be a non-empty"),
        ({"input": "  "}, "invalid_messages", "input must be a non-empty"),
        (
            {
                "input": [
                    {"role": "user", "content": "Weather in Paris?"},
                    {"type": "function_call_output", "call_id": "call_nowhere", "output": "x"},
                ]
            },
            "invalid_messages",
            "input[1]: no tool call with call_id 'call_nowhere'",
        ),
        ({"input": "hi", "tools": [WEATHER, WEATHER]}, "invalid_parameter", "given twice"),
        (  # the message reader's errors name the input item, not a message of its own
            {
                "instructions": "Be brief.",
                "input": [
                    {"role": "user", "content": "hi"},
                    {"type": "reasoning", "summary": []},
                    {"role": "user", "content": ""},
                ],
            },
            "invalid_messages",
            "input[2].content must be a non-empty string",
        ),
        (
            {"input": [{"role": "assistant", "content": "Hello"}]},
            "invalid_messages",
            "input must include a user message",
        ),
        (
            {"input": [{"type": "item_reference", "id": 5}, {"role": "user", "content": "Hi"}]},
            "not_found",
            "Item with id '5' not found",
        ),
    ],
)
def test_input_and_tools_the_model_could_not_make_sense_of_are_refused(
    oai: OpenAI, sent, body: dict[str, Any], code: str, says: str
) -> None:
    with pytest.raises((openai.BadRequestError, openai.NotFoundError)) as refused:
        oai.responses.create(model="glm-4-flash", **body)
    assert refused.value.code == code
    assert says in refused.value.message
    assert refused.value.param in ("input", "tools")
    assert sent() == []


def test_an_output_answers_a_call_of_the_response_it_continues_only(oai: OpenAI, sent) -> None:
    first = oai.responses.create(
        model="glm-4.7", input="Weather in Paris #tool=get_weather", tools=[WEATHER]
    )
    call = _call_of(first)
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(
            model="glm-4.7", tools=[WEATHER], input=[{"role": "user", "content": "More"}, output]
        )
    assert refused.value.code == "invalid_messages" and call.call_id in refused.value.message

    second = oai.responses.create(
        model="glm-4.7", tools=[WEATHER], input=[output], previous_response_id=first.id
    )
    assert second.status == "completed"
    assert len(sent()) == 2


def test_responses_count_against_the_caller_s_daily_quotas(stack: DevStack, sent) -> None:
    sub = f"quota-{uuid.uuid4().hex[:8]}"

    def client(**limits: int) -> OpenAI:
        token = mint_access_token(sub, 600, stack.access_token_secret, limits=TokenLimits(**limits))
        return OpenAI(base_url=stack.url + "/v1", api_key=token, max_retries=0, timeout=30)

    with client() as plain:
        # A large output cap reserves many tokens; only what the answers used stays counted.
        first = plain.responses.create(
            model="glm-4-flash", input="Hi #chunks=3", max_output_tokens=4000
        )
        with plain.responses.stream(
            model="glm-4-flash", input="Hi #chunks=3", max_output_tokens=4000
        ) as stream:
            streamed = stream.get_final_response()
    assert first.usage is not None and streamed.usage is not None
    used = first.usage.total_tokens + streamed.usage.total_tokens
    with client(tokens_per_day=used + 50 + 100) as tight:
        third = tight.responses.create(
            model="glm-4-flash", input="Hi #chunks=3", max_output_tokens=50
        )
    assert third.status == "completed" and third.usage is not None
    with client(requests_per_day=3) as spent:
        with pytest.raises(openai.RateLimitError) as refused:
            spent.responses.create(model="glm-4-flash", input="Hi")
        assert refused.value.code == "quota_exceeded" and "requests" in refused.value.message
        assert refused.value.response.headers["retry-after"]
        assert spent.responses.retrieve(first.id).id == first.id  # reading costs nothing
    with client(tokens_per_day=used + third.usage.total_tokens + 10) as over:
        with pytest.raises(openai.RateLimitError) as refused:
            over.responses.create(model="glm-4-flash", input="Hi", max_output_tokens=50)
        assert "tokens" in refused.value.message
    # The refused two may have reached the upstream (QUOTA_OVERLAP), closed before a byte.
    assert len(sent()) in (3, 4, 5)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v1/responses"),
        ("GET", "/v1/responses/resp_x"),
        ("DELETE", "/v1/responses/resp_x"),
    ],
)
def test_every_responses_route_needs_an_access_token(
    stack: DevStack, client, sent, method: str, path: str
) -> None:
    body = {"model": "glm-4-flash", "input": "hi"} if method == "POST" else None
    refused = client.request(method, stack.url + path, json=body)
    assert refused.status_code == 401
    assert refused.json()["error"]["code"] == "unauthorized"
    assert refused.headers["www-authenticate"].startswith("Bearer")
    assert sent() == []


class Forecast(BaseModel):
    city: str
    days: int


def test_parse_with_a_text_format_comes_back_as_that_model(oai: OpenAI, sent) -> None:
    parsed = oai.responses.parse(model="glm-5.1", input="Paris #chunks=4", text_format=Forecast)

    (body,) = sent()
    assert body["response_format"] == {"type": "json_object"}
    assert '"required": ["city", "days"]' in body["messages"][0]["content"]  # asked for, in words
    assert parsed.output_parsed == Forecast.model_validate_json(expected_text(body))
    assert parsed.output_parsed is not None and parsed.output_parsed.city


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tools", '[{"type": "function", "name": "\\ud800"}]'),
        ("tools", '[{"type": "custom", "name": "patch", "description": "\\udfff"}]'),
        ("metadata", '{"a": "\\ud800"}'),
        ("instructions", '"\\ud800"'),
    ],
)
def test_text_utf_8_cannot_hold_is_refused_naming_its_field(
    refusal_of, sent, field: str, value: str
) -> None:
    body = f'{{"model": "glm-4.7", "input": "hi", "stream": true, "{field}": {value}}}'
    error = refusal_of("/v1/responses", body)
    assert error["code"] in ("invalid_parameter", "invalid_messages")
    assert error["param"] == field and "unpaired surrogate" in error["message"]
    assert sent() == []
