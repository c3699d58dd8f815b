"""Clients nobody here wrote read the fake exactly like the real service: the official Zhipu SDK
(`zai-sdk`) and `openai` pointed at `/api/paas/v4`. Same text, usage, finish reason, and each
SDK's own error type and code for refusals."""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from upstream_support import API_KEY
from zai import ZhipuAiClient
from zai.core import _errors as zai_errors

from mock_upstream import expected_chunks, expected_reasoning_chunks, expected_tool_call, faults
from mock_upstream.testing import MockUpstream
from mock_upstream.words import UNICODE_CHUNKS

MODEL = "glm-4-flash"


def messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def request_body(text: str) -> dict:
    return {"model": MODEL, "messages": messages(text)}


@pytest.fixture
def zai(upstream: MockUpstream) -> ZhipuAiClient:
    return ZhipuAiClient(api_key=API_KEY, base_url=upstream.base_url, max_retries=0)


@pytest.fixture
def zai_jwt(upstream: MockUpstream) -> ZhipuAiClient:
    """The SDK in its JWT mode: it signs `{api_key, exp, timestamp}` in milliseconds."""
    return ZhipuAiClient(
        api_key=API_KEY, base_url=upstream.base_url, max_retries=0, disable_token_cache=False
    )


@pytest.fixture
def oai(upstream: MockUpstream) -> openai.OpenAI:
    return openai.OpenAI(api_key=API_KEY, base_url=upstream.base_url, max_retries=0)


def zai_stream(client: ZhipuAiClient, text: str, **kwargs) -> tuple[list[str], list]:
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=messages(text), stream=True, **kwargs)
    )
    texts = [c.choices[0].delta.content for c in chunks[:-1] if c.choices[0].delta.content]
    return texts, chunks


def oai_stream(client: openai.OpenAI, text: str, **kwargs) -> tuple[list[str], list]:
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=messages(text), stream=True, **kwargs)
    )
    texts = [c.choices[0].delta.content for c in chunks[:-1] if c.choices[0].delta.content]
    return texts, chunks


# --- successful answers ----------------------------------------------------------------------


@pytest.mark.parametrize("sdk", ["zai", "zai_jwt"])
def test_official_sdk_streams_the_expected_text_usage_and_finish_reason(
    upstream: MockUpstream, sdk: str, request: pytest.FixtureRequest
) -> None:
    client = request.getfixturevalue(sdk)
    text = "Describe a river #chunks=25"
    texts, chunks = zai_stream(client, text)

    assert texts == expected_chunks(request_body(text))
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage.completion_tokens == 25
    assert last.usage.total_tokens == last.usage.prompt_tokens + 25
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert upstream.requests()[-1]["auth"] == ("jwt" if sdk == "zai_jwt" else "api_key")


def test_openai_streams_the_expected_text_usage_and_finish_reason(
    upstream: MockUpstream, oai: openai.OpenAI
) -> None:
    text = "Describe a river #chunks=25"
    texts, chunks = oai_stream(oai, text)

    assert texts == expected_chunks(request_body(text))
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 25
    assert {c.id for c in chunks} == {chunks[0].id}


def test_both_sdks_read_a_non_stream_answer(zai: ZhipuAiClient, oai: openai.OpenAI) -> None:
    text = "Say something #chunks=6"
    z = zai.chat.completions.create(model=MODEL, messages=messages(text))
    o = oai.chat.completions.create(model=MODEL, messages=messages(text))

    expected = "".join(expected_chunks(request_body(text)))
    for answer in (z, o):
        assert answer.choices[0].message.content == expected
        assert answer.choices[0].finish_reason == "stop"
        assert answer.usage is not None and answer.usage.completion_tokens == 6


@pytest.mark.parametrize("shape", ["unicode", "crlf"])
def test_both_sdks_reassemble_awkward_streams_exactly(
    zai: ZhipuAiClient, oai: openai.OpenAI, shape: str
) -> None:
    text = f"#fault={shape} #chunks=18"
    expected = expected_chunks(request_body(text))
    if shape == "unicode":
        assert expected == list(UNICODE_CHUNKS)

    assert zai_stream(zai, text)[0] == [t for t in expected if t]
    assert oai_stream(oai, text)[0] == [t for t in expected if t]


def test_both_sdks_see_reasoning_before_content(zai: ZhipuAiClient, oai: openai.OpenAI) -> None:
    text = "Think #fault=reasoning #chunks=6"
    reasoning = expected_reasoning_chunks(request_body(text))

    z_chunks = zai_stream(zai, text)[1]
    o_chunks = oai_stream(oai, text)[1]

    assert [c.choices[0].delta.reasoning_content for c in z_chunks[:3]] == reasoning
    assert [getattr(c.choices[0].delta, "reasoning_content", None) for c in o_chunks[:3]] == (
        reasoning
    )
    assert z_chunks[-1].usage.completion_tokens_details.reasoning_tokens == 3


def test_both_sdks_read_one_complete_tool_call(zai: ZhipuAiClient, oai: openai.OpenAI) -> None:
    parameters = {"type": "object", "properties": {"query": {"type": "string"}}}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": parameters}}]
    text = "Weather? #fault=tool_call"
    call = expected_tool_call({**request_body(text), "tools": tools})
    assert call is not None

    for chunks in (zai_stream(zai, text, tools=tools)[1], oai_stream(oai, text, tools=tools)[1]):
        (tool_call,) = chunks[0].choices[0].delta.tool_calls
        assert (tool_call.id, tool_call.index, tool_call.type) == (call["id"], 0, "function")
        assert tool_call.function.name == "get_weather"
        assert json.loads(tool_call.function.arguments) == {"query": "Weather?"}
        assert chunks[-1].choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize("reason", ["sensitive", "network_error", "length"])
def test_both_sdks_report_a_partial_answer_and_its_finish_reason(
    zai: ZhipuAiClient, oai: openai.OpenAI, reason: str
) -> None:
    text = f"#fault={reason} #chunks=8"
    expected = expected_chunks(request_body(text))[:4]
    for texts, chunks in (zai_stream(zai, text), oai_stream(oai, text)):
        assert texts == expected
        assert chunks[-1].choices[0].finish_reason == reason
        assert chunks[-1].usage.completion_tokens == 4


async def test_async_openai_streams_the_expected_text(upstream: MockUpstream) -> None:
    text = "async please #chunks=10 #delay=1"
    async with openai.AsyncOpenAI(
        api_key=API_KEY, base_url=upstream.base_url, max_retries=0
    ) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=messages(text), stream=True
        )
        texts = [c.choices[0].delta.content async for c in stream if c.choices[0].delta.content]
    assert texts == expected_chunks(request_body(text))


# --- refusals ------------------------------------------------------------------------------

ZAI_ERRORS = {
    400: zai_errors.APIRequestFailedError,
    401: zai_errors.APIAuthenticationError,
    429: zai_errors.APIReachLimitError,
    500: zai_errors.APIInternalError,
    503: zai_errors.APIServerFlowExceedError,
}
OPENAI_ERRORS = {
    400: openai.BadRequestError,
    401: openai.AuthenticationError,
    429: openai.RateLimitError,
    500: openai.InternalServerError,
    503: openai.InternalServerError,
}

REFUSALS = [
    ("#fault=auth", 401, "1002"),
    ("#fault=expired", 401, "1003"),
    ("#fault=rate_limit", 429, "1302"),
    ("#fault=balance", 429, "1113"),
    ("#fault=too_long", 400, "1261"),
    ("#fault=server_error", 500, "500"),
    ("#fault=unavailable", 503, "503"),
    ("#fault=explode", 400, "1214"),
]


@pytest.mark.parametrize(("text", "status", "code"), REFUSALS)
def test_official_sdk_raises_its_own_error_type_with_the_zhipu_code(
    zai: ZhipuAiClient, text: str, status: int, code: str
) -> None:
    with pytest.raises(ZAI_ERRORS[status]) as caught:
        zai.chat.completions.create(model=MODEL, messages=messages(text), stream=True)

    assert caught.value.status_code == status
    assert caught.value.response.json()["error"]["code"] == code


@pytest.mark.parametrize(("text", "status", "code"), REFUSALS)
def test_openai_raises_its_own_error_type_with_the_zhipu_code(
    oai: openai.OpenAI, text: str, status: int, code: str
) -> None:
    with pytest.raises(OPENAI_ERRORS[status]) as caught:
        oai.chat.completions.create(model=MODEL, messages=messages(text), stream=True)

    assert caught.value.status_code == status
    assert caught.value.code == code


def test_both_sdks_reject_a_wrong_key_and_an_unknown_model(upstream: MockUpstream) -> None:
    bad_zai = ZhipuAiClient(api_key="nobody.nothing", base_url=upstream.base_url, max_retries=0)
    bad_oai = openai.OpenAI(api_key="nobody.nothing", base_url=upstream.base_url, max_retries=0)
    good_oai = openai.OpenAI(api_key=API_KEY, base_url=upstream.base_url, max_retries=0)

    with pytest.raises(zai_errors.APIAuthenticationError):
        bad_zai.chat.completions.create(model=MODEL, messages=messages("hi"))
    with pytest.raises(openai.AuthenticationError) as auth:
        bad_oai.chat.completions.create(model=MODEL, messages=messages("hi"))
    with pytest.raises(openai.BadRequestError) as model:
        good_oai.chat.completions.create(model="gpt-4o", messages=messages("hi"))
    assert (auth.value.code, model.value.code) == ("1002", "1211")


def test_official_sdk_retries_a_503_and_then_gets_the_answer(upstream: MockUpstream) -> None:
    client = ZhipuAiClient(api_key=API_KEY, base_url=upstream.base_url, max_retries=1)
    text = "retry #fault=unavailable #times=1 #chunks=5"

    texts, _ = zai_stream(client, text)

    assert texts == expected_chunks(request_body(text))
    assert [r["status"] for r in upstream.requests()] == [503, 200]


# --- failures after the stream started -------------------------------------------------------


def test_error_frame_raises_each_sdks_stream_error(zai: ZhipuAiClient, oai: openai.OpenAI) -> None:
    text = "#fault=error_frame #chunks=4"
    with pytest.raises(zai_errors.APIResponseError) as z:
        zai_stream(zai, text)
    with pytest.raises(openai.APIError) as o:
        oai_stream(oai, text)

    error = {"code": "1234", "message": faults.ERROR_FRAME_MESSAGE}
    assert z.value.json_data == error
    assert o.value.body == error and o.value.message == faults.ERROR_FRAME_MESSAGE


def test_drop_surfaces_as_a_broken_connection(zai: ZhipuAiClient, oai: openai.OpenAI) -> None:
    text = "#fault=drop #chunks=4"
    with pytest.raises(httpx.RemoteProtocolError):
        zai_stream(zai, text)
    with pytest.raises(openai.APIConnectionError):
        oai_stream(oai, text)


def test_malformed_line_stops_both_sdks(zai: ZhipuAiClient, oai: openai.OpenAI) -> None:
    text = "#fault=malformed #chunks=4"
    with pytest.raises(json.JSONDecodeError):
        zai_stream(zai, text)
    with pytest.raises(json.JSONDecodeError):
        oai_stream(oai, text)
