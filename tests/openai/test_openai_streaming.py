"""``/v1/chat/completions`` with ``stream: true``, read by the official OpenAI SDK and as raw bytes.

The fake upstream's answer is deterministic, so every test compares what the SDK saw with the
exact pieces the upstream sent for the body it received.
"""

from __future__ import annotations

import json

import httpx
import openai
import pytest
from openai import AsyncOpenAI, OpenAI
from openai.types.chat import ChatCompletionMessageParam

from devtools.stack import DevStack
from mock_upstream.answer import expected_chunks, expected_reasoning_chunks, expected_tool_call

MODEL = "glm-4-flash"


def ask(text: str) -> list[ChatCompletionMessageParam]:
    return [{"role": "user", "content": text}]


def test_stream_carries_exactly_the_upstream_text(oai: OpenAI, sent) -> None:
    raw = oai.chat.completions.with_raw_response.create(
        model=MODEL, messages=ask("Tell me about rivers #chunks=25"), stream=True
    )
    chunks = list(raw.parse())

    bodies = sent()
    assert len(bodies) == 1
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "".join(
        expected_chunks(bodies[0])
    )
    first, last = chunks[0], chunks[-1]
    assert first.choices[0].delta.role == "assistant"
    assert first.choices[0].delta.content == ""
    assert last.choices[0].finish_reason == "stop"
    assert last.choices[0].delta.content is None
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * (len(chunks) - 1)
    assert {c.id for c in chunks} == {"chatcmpl-" + raw.headers["x-request-id"]}
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert {c.model for c in chunks} == {MODEL}
    assert len({c.created for c in chunks}) == 1
    assert all(c.usage is None for c in chunks), "usage only with stream_options.include_usage"


def test_usage_comes_last_when_asked_for(oai: OpenAI, sent) -> None:
    stream = oai.chat.completions.create(
        model=MODEL,
        messages=ask("Count for me #chunks=7"),
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    *answer, usage_chunk = chunks
    assert usage_chunk.choices == []
    assert usage_chunk.usage is not None
    assert usage_chunk.usage.completion_tokens == 7  # one token per piece upstream
    assert usage_chunk.usage.prompt_tokens > 0
    assert usage_chunk.usage.total_tokens == (
        usage_chunk.usage.prompt_tokens + usage_chunk.usage.completion_tokens
    )
    assert all(c.usage is None for c in answer)
    assert answer[-1].choices[0].finish_reason == "stop"
    text = "".join(c.choices[0].delta.content or "" for c in answer)
    assert text == "".join(expected_chunks(sent()[0]))


def test_request_fields_reach_the_upstream(oai: OpenAI, sent) -> None:
    stream = oai.chat.completions.create(
        model="glm-4-air",
        messages=[
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Name a colour"}]},
            {"role": "assistant", "content": "Blue."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Another one"},
                    {"type": "text", "text": "#chunks=4"},
                ],
            },
        ],
        temperature=0.3,
        top_p=0.8,
        max_completion_tokens=50,
        stream=True,
        # Passed or mapped: user becomes user_id, stop goes as a list.
        user="someone",
        stop=["never"],
        # Defaults that change nothing: dropped.
        presence_penalty=0,
        n=1,
        parallel_tool_calls=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    (body,) = sent()
    assert body["model"] == "glm-4-air"
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one\n#chunks=4"},
    ]
    assert (body["temperature"], body["top_p"], body["max_tokens"]) == (0.3, 0.8, 50)
    assert (body["user_id"], body["stop"]) == ("someone", ["never"])
    assert not {"user", "presence_penalty", "n", "parallel_tool_calls"} & set(body)
    assert text == "".join(expected_chunks(body))
    assert len(expected_chunks(body)) == 4


def test_max_tokens_cuts_the_answer_with_finish_reason_length(oai: OpenAI, sent) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=MODEL, messages=ask("Go on #chunks=30"), max_tokens=5, stream=True
        )
    )

    (body,) = sent()
    assert body["max_tokens"] == 5
    assert chunks[-1].choices[0].finish_reason == "length"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(
        expected_chunks(body)
    )


def test_reasoning_arrives_as_reasoning_content(oai: OpenAI, sent) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=MODEL, messages=ask("Think first #fault=reasoning #chunks=6"), stream=True
        )
    )

    (body,) = sent()
    deltas = [c.choices[0].delta for c in chunks]
    reasoning = [getattr(d, "reasoning_content", None) for d in deltas]
    assert [r for r in reasoning if r] == expected_reasoning_chunks(body)
    assert "".join(d.content or "" for d in deltas) == "".join(expected_chunks(body))
    # All the reasoning comes before the first content piece, as upstream sent it.
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    assert not any(reasoning[first_content:])


def test_tool_call_arrives_as_tool_calls(oai: OpenAI, sent) -> None:
    chunks = list(
        oai.chat.completions.create(
            model=MODEL, messages=ask("Look it up #fault=tool_call"), stream=True
        )
    )

    (body,) = sent()
    expected = expected_tool_call(body)
    assert expected is not None
    calls = [call for c in chunks for call in c.choices[0].delta.tool_calls or ()]
    assert len(calls) == 1
    call = calls[0]
    assert call.index == 0
    assert call.id == expected["id"]
    assert call.type == "function"
    assert call.function is not None
    assert call.function.name == expected["function"]["name"]
    assert json.loads(call.function.arguments or "") == json.loads(
        expected["function"]["arguments"]
    )
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_unicode_pieces_survive_the_sdk_decoder(oai: OpenAI, sent) -> None:
    stream = oai.chat.completions.create(
        model=MODEL, messages=ask("Say it #fault=unicode"), stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    assert text == "".join(expected_chunks(sent()[0]))


def test_midstream_drop_raises_api_error_while_iterating(oai: OpenAI, sent) -> None:
    stream = oai.chat.completions.create(
        model=MODEL, messages=ask("Start then fail #fault=drop #chunks=20"), stream=True
    )
    text = ""
    with pytest.raises(openai.APIError) as raised:
        for chunk in stream:
            text += chunk.choices[0].delta.content or ""

    assert raised.value.body is not None
    assert raised.value.body["code"] == "upstream_disconnected"  # type: ignore[index]
    assert raised.value.body["type"] == "server_error"  # type: ignore[index]
    full = "".join(expected_chunks(sent()[0]))
    assert full.startswith(text) and text != full


def test_raw_stream_is_data_lines_only_and_ends_with_done(stack: DevStack, sent) -> None:
    body = {"model": MODEL, "messages": ask("Plain frames #chunks=5"), "stream": True}
    headers = {"Authorization": f"Bearer {stack.token}"}
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers)

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    raw = response.content
    assert raw.endswith(b"\n\ndata: [DONE]\n\n")
    lines = [line for line in raw.split(b"\n") if line]
    assert not any(line.startswith((b"id:", b"event:")) for line in lines)
    assert all(line.startswith((b"data: ", b":")) for line in lines)
    frames = [f for f in raw.split(b"\n\n") if f.startswith(b"data: {")]
    chunks = [json.loads(f[len(b"data: ") :]) for f in frames]
    assert len(chunks) == 1 + 5 + 1  # role, pieces, finish
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    assert all("usage" not in chunk for chunk in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks) == "".join(
        expected_chunks(sent()[0])
    )


def test_raw_stream_failure_is_an_error_frame_without_done(stack: DevStack) -> None:
    body = {"model": MODEL, "messages": ask("Fail #fault=drop #chunks=10"), "stream": True}
    headers = {"Authorization": f"Bearer {stack.token}"}
    with httpx.Client(timeout=30) as http:
        response = http.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers)

    assert response.status_code == 200
    frames = [f for f in response.content.split(b"\n\n") if f.startswith(b"data: ")]
    assert b"[DONE]" not in response.content
    last = json.loads(frames[-1][len(b"data: ") :])
    assert last == {
        "error": {
            "message": last["error"]["message"],
            "type": "server_error",
            "param": None,
            "code": "upstream_disconnected",
        }
    }


async def test_async_client_streams(async_oai: AsyncOpenAI, sent) -> None:
    stream = await async_oai.chat.completions.create(
        model=MODEL,
        messages=ask("Async please #chunks=9"),
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage, finish = "", None, None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
        usage = chunk.usage or usage

    assert text == "".join(expected_chunks(sent()[0]))
    assert finish == "stop"
    assert usage is not None and usage.completion_tokens == 9
