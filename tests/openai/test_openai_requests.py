"""``/v1/chat/completions`` without streaming, ``/v1/models``, and errors as the OpenAI SDK sees
them: each failure must raise the SDK's matching exception class, and a request the relay refuses
must never reach the upstream."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types.chat import ChatCompletionMessageParam

from devtools.stack import DevStack
from glm_relay.access import TokenLimits, mint_access_token
from glm_relay.chat.models import CATALOGUE
from mock_upstream.answer import expected_chunks, expected_reasoning_chunks, expected_tool_call

MODEL = "glm-4-flash"


def ask(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def post(stack: DevStack, body: Any, **headers: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {stack.token}", **headers}
    with httpx.Client(timeout=30) as http:
        if isinstance(body, bytes):
            return http.post(f"{stack.url}/v1/chat/completions", content=body, headers=headers)
        return http.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers)


def test_whole_answer_has_the_streamed_text_finish_reason_and_usage(oai: OpenAI, sent) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=MODEL, messages=ask("Tell me about gardens #chunks=11")
    )
    completion = raw.parse()

    (body,) = sent()
    assert raw.headers["content-type"].startswith("application/json")
    assert completion.id == "chatcmpl-" + raw.headers["x-request-id"]
    assert completion.object == "chat.completion"
    assert completion.model == MODEL
    assert completion.created > 0
    (choice,) = completion.choices
    assert choice.index == 0
    assert choice.message.role == "assistant"
    assert choice.message.content == "".join(expected_chunks(body))
    assert choice.message.tool_calls is None
    assert choice.finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 11
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )


def test_whole_answer_with_a_tool_call(oai: OpenAI, sent) -> None:
    completion = oai.chat.completions.create(model=MODEL, messages=ask("Find it #fault=tool_call"))

    expected = expected_tool_call(sent()[0])
    assert expected is not None
    (choice,) = completion.choices
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls or []
    assert call.id == expected["id"]
    assert call.type == "function"
    assert call.function.name == expected["function"]["name"]
    assert json.loads(call.function.arguments) == json.loads(expected["function"]["arguments"])


def test_whole_answer_with_reasoning(oai: OpenAI, sent) -> None:
    completion = oai.chat.completions.create(
        model=MODEL, messages=ask("Reason #fault=reasoning #chunks=4")
    )

    (body,) = sent()
    message = completion.choices[0].message
    assert getattr(message, "reasoning_content", None) == "".join(expected_reasoning_chunks(body))
    assert message.content == "".join(expected_chunks(body))


def test_whole_answer_that_fails_midway_is_a_server_error(oai: OpenAI, sent) -> None:
    with pytest.raises(openai.InternalServerError) as raised:
        oai.chat.completions.create(model=MODEL, messages=ask("Break #fault=drop #chunks=12"))

    assert raised.value.status_code == 502
    assert raised.value.code == "upstream_disconnected"
    assert raised.value.type == "server_error"
    assert len(sent()) == 1


def test_models_lists_the_catalogue_when_no_allow_list_is_set(oai: OpenAI, stack: DevStack) -> None:
    assert stack.app is not None and stack.app.settings.allowed_models == ()
    listed = list(oai.models.list())

    assert [m.id for m in listed] == list(CATALOGUE)
    assert {(m.object, m.owned_by) for m in listed} == {("model", "zhipu")}
    assert len({m.created for m in listed}) == 1
    by_id = {m.id: m.model_dump() for m in listed}
    assert by_id["glm-5.3"]["context_window"] == 1_000_000
    assert by_id["glm-5.3"]["max_output_tokens"] == 131072
    assert by_id["glm-5.3"]["reasoning_efforts"] == ["low", "high", "max"]
    assert by_id["glm-4.6v"]["input_modalities"] == ["text", "image", "video", "file"]
    assert by_id["glm-4-flash"]["thinking"] == "none"
    assert by_id["glm-4.7-flash"]["free"] is True


def test_one_model_or_a_404_in_openai_shape(oai: OpenAI, sent) -> None:
    model = oai.models.retrieve("glm-4.7")
    with pytest.raises(openai.NotFoundError) as raised:
        oai.models.retrieve("gpt-4o")

    assert (model.id, model.object, model.owned_by) == ("glm-4.7", "model", "zhipu")
    assert model.model_dump()["max_output_tokens"] == 131072
    assert raised.value.status_code == 404
    assert raised.value.code == "model_not_found"
    assert raised.value.type == "not_found_error"
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert sent() == []


def test_bad_token_is_an_authentication_error(stack: DevStack, sent) -> None:
    with (
        OpenAI(base_url=stack.url + "/v1", api_key="not-a-token", max_retries=0) as bad,
        pytest.raises(openai.AuthenticationError),
    ):
        bad.chat.completions.create(model=MODEL, messages=ask("Hello"), stream=True)

    assert sent() == []


def test_unknown_model_is_a_bad_request_that_costs_nothing(oai: OpenAI, sent) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        oai.chat.completions.create(model="gpt-4o", messages=ask("Hello"), stream=True)

    assert raised.value.code == "model_not_allowed"
    assert raised.value.type == "invalid_request_error"
    assert raised.value.param == "model"
    assert "gpt-4o" in raised.value.message
    assert sent() == []


@pytest.mark.parametrize(
    ("fields", "words"),
    [
        ({"temperature": 2.5}, "temperature must be in [0, 2]"),
        ({"top_p": 0}, "top_p must be in [0.01, 1]"),
        ({"max_tokens": 10**6}, "max_tokens must be between 1 and 4096 (glm-4-flash's limit)"),
        ({"max_completion_tokens": 0}, "max_completion_tokens must be between 1 and"),
        ({"n": 2}, "n 2 is not supported: the relay returns one choice"),
        ({"tool_choice": "required"}, 'tool_choice "required" needs at least one function tool'),
        ({"messages": []}, "messages must be a non-empty list"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "tool_call_id must be a non-empty"),
        ({"messages": [{"role": "function", "content": "x"}]}, "role must be one of"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "glm-4-flash takes text only; image_url parts need a vision model",
        ),
        ({"messages": [{"role": "system", "content": "Be brief."}]}, "a user message"),
    ],
)
def test_invalid_fields_are_bad_requests_that_cost_nothing(
    oai: OpenAI, sent, fields: dict[str, Any], words: str
) -> None:
    request: dict[str, Any] = {"model": MODEL, "messages": ask("Hello"), **fields}
    with pytest.raises(openai.BadRequestError) as raised:
        oai.chat.completions.create(**request)

    assert words in raised.value.message
    assert raised.value.type == "invalid_request_error"
    assert sent() == []


def test_missing_model_and_bad_json_answer_in_openai_shape(stack: DevStack, sent) -> None:
    missing = post(stack, {"messages": ask("Hello")})
    garbled = post(stack, b"{not json", **{"Content-Type": "application/json"})

    assert missing.status_code == 400
    assert missing.json() == {
        "error": {
            "message": "model is required and must be a string",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_parameter",
        }
    }
    assert missing.headers["x-should-retry"] == "false"
    assert garbled.status_code == 400
    assert garbled.json()["error"]["code"] == "invalid_json"
    assert sent() == []


def test_upstream_rate_limit_is_a_rate_limit_error(oai: OpenAI, stack: DevStack, sent) -> None:
    with pytest.raises(openai.RateLimitError) as raised:
        oai.chat.completions.create(
            model=MODEL, messages=ask("Busy #fault=rate_limit"), stream=True
        )

    assert raised.value.code == "rate_limited"
    assert raised.value.type == "rate_limit_error"
    # The relay retried already: the SDK must not retry on top.
    assert raised.value.response.headers["x-should-retry"] == "false"
    assert stack.app is not None
    assert len(sent()) == stack.app.settings.retry_attempts  # the relay retried, then gave up


def test_token_limit_caps_max_tokens(stack: DevStack, sent) -> None:
    token = mint_access_token(
        "openai-capped", 600, stack.access_token_secret, limits=TokenLimits(max_tokens=3)
    )
    with OpenAI(base_url=stack.url + "/v1", api_key=token, max_retries=0, timeout=30) as capped:
        completion = capped.chat.completions.create(
            model=MODEL, messages=ask("Long please #chunks=20"), max_tokens=100
        )

    (body,) = sent()
    assert body["max_tokens"] == 3
    assert completion.choices[0].finish_reason == "length"
    assert completion.choices[0].message.content == "".join(expected_chunks(body))


def test_whole_answer_waits_through_keepalives(oai: OpenAI, sent, stack: DevStack) -> None:
    # Pieces 700 ms apart: longer than the stack's keepalive interval, shorter than its idle limit.
    assert stack.app is not None
    assert stack.app.settings.keepalive_seconds < 0.7 < stack.app.settings.idle_timeout_seconds
    completion = oai.chat.completions.create(
        model=MODEL, messages=ask("Slowly #chunks=3 #delay=700")
    )

    assert completion.choices[0].message.content == "".join(expected_chunks(sent()[0]))
    assert completion.choices[0].finish_reason == "stop"
