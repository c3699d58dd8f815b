"""Answer shapes that follow the request: thinking per model, stop, json_object, language, usage."""

from __future__ import annotations

import json
from typing import Any

import pytest
from upstream_support import body, chunks, content_of, frames, post

from mock_upstream import expected_chunks, expected_reasoning_chunks
from mock_upstream.answer import expected_text
from mock_upstream.prompt import count_tokens
from mock_upstream.testing import MockUpstream


def _stream(upstream: MockUpstream, request: dict[str, Any]) -> list[dict[str, Any]]:
    response = post(upstream.base_url, request)
    assert response.status_code == 200, response.text
    return chunks(response.content)


@pytest.mark.parametrize(
    ("model", "thinking", "reasons"),
    [
        ("glm-4-flash", None, False),
        ("glm-4-flash", {"type": "enabled"}, True),
        ("glm-4.5", None, True),
        ("glm-4.5-air", {"type": "disabled"}, False),
        ("glm-4.6", None, True),
        ("glm-4.6", {"type": "disabled"}, False),
        ("glm-4.7-flash", {"type": "enabled"}, True),
        ("glm-5.3", None, True),
        ("glm-4.6v", None, True),
    ],
)
def test_reasoning_follows_the_model_default_and_thinking(
    upstream: MockUpstream, model: str, thinking: dict | None, reasons: bool
) -> None:
    request = body("why is the sky blue? #chunks=6", model=model, thinking=thinking)
    parsed = _stream(upstream, request)

    reasoning = content_of(parsed, "reasoning_content")
    assert reasoning == expected_reasoning_chunks(request)
    assert bool(reasoning) is reasons
    assert content_of(parsed) == expected_chunks(request)
    first_content = next(i for i, c in enumerate(parsed) if "content" in c["choices"][0]["delta"])
    assert all("reasoning_content" not in c["choices"][0]["delta"] for c in parsed[first_content:])
    usage = parsed[-1]["usage"]
    if reasons:
        assert len(reasoning) == 3
        assert usage["completion_tokens_details"] == {"reasoning_tokens": 3}
        assert usage["completion_tokens"] == 3 + 6
    else:
        assert "completion_tokens_details" not in usage
    assert usage["prompt_tokens_details"] == {"cached_tokens": 0}


@pytest.mark.parametrize(("effort", "count"), [("low", 1), ("high", 3), ("max", 6)])
def test_reasoning_effort_scales_the_reasoning(
    upstream: MockUpstream, effort: str, count: int
) -> None:
    request = body("plan it #chunks=6", model="glm-5.3", reasoning_effort=effort)
    assert len(content_of(_stream(upstream, request), "reasoning_content")) == count


def test_stop_cuts_before_the_first_stop_string_with_finish_reason_stop(
    upstream: MockUpstream,
) -> None:
    plain = expected_chunks(body("tell me more #chunks=12"))
    text = "".join(plain)
    stop_word = plain[5].strip()
    request = body("tell me more #chunks=12", stop=["zzz", stop_word])
    parsed = _stream(upstream, request)

    got = "".join(content_of(parsed))
    assert got == text[: text.index(stop_word)] == "".join(expected_chunks(request))
    assert stop_word not in got
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"
    assert parsed[-1]["usage"]["completion_tokens"] == len(expected_chunks(request))


def test_stop_as_a_single_string_and_mid_piece(upstream: MockUpstream) -> None:
    plain = expected_text(body("a b c #chunks=8", stream=False))
    stop = plain[3:5]  # inside the first word
    request = body("a b c #chunks=8", stream=False, stop=stop)
    answer = post(upstream.base_url, request).json()

    assert answer["choices"][0]["message"]["content"] == plain[: plain.index(stop)]
    assert answer["choices"][0]["finish_reason"] == "stop"


def test_stop_that_never_occurs_changes_nothing(upstream: MockUpstream) -> None:
    request = body("same as ever #chunks=5", stop=["\u2603"])
    assert content_of(_stream(upstream, request)) == expected_chunks(body("same as ever #chunks=5"))


def test_json_object_answer_is_a_json_object_with_the_usual_text(upstream: MockUpstream) -> None:
    request = body("describe it #chunks=7", response_format={"type": "json_object"})
    parsed = _stream(upstream, request)

    text = "".join(content_of(parsed))
    assert json.loads(text) == {"answer": expected_text(body("describe it #chunks=7"))}
    assert content_of(parsed) == expected_chunks(request)
    assert all(count_tokens(piece) == 1 for piece in content_of(parsed))
    answer = post(upstream.base_url, {**request, "stream": False}).json()
    assert json.loads(answer["choices"][0]["message"]["content"]) == json.loads(text)


def test_json_object_answer_fills_the_schema_a_system_message_asks_for(
    upstream: MockUpstream,
) -> None:
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 3}},
        "required": ["city", "days"],
    }
    ask = "Answer with one JSON object only. It must match this JSON schema (Forecast):\n"
    request = body("describe it #chunks=4", response_format={"type": "json_object"})
    request["messages"].insert(0, {"role": "system", "content": ask + json.dumps(schema)})

    text = "".join(content_of(_stream(upstream, request)))
    plain = expected_text(body("describe it #chunks=4"))
    assert json.loads(text) == {"city": plain, "days": 3}
    assert "".join(expected_chunks(request)) == text


def test_text_response_format_is_the_plain_answer(upstream: MockUpstream) -> None:
    request = body("describe it #chunks=7", response_format={"type": "text"})
    assert expected_chunks(request) == expected_chunks(body("describe it #chunks=7"))


def test_chinese_question_gets_a_chinese_answer(upstream: MockUpstream) -> None:
    request = body("天空为什么是蓝色的? #chunks=10", model="glm-4.6")
    parsed = _stream(upstream, request)

    content = content_of(parsed)
    assert content == expected_chunks(request) and len(content) == 10
    assert all(len(piece) == 1 for piece in content)
    assert all("\u4e00" <= ch <= "\u9fff" or ch == "。" for ch in "".join(content))
    reasoning = content_of(parsed, "reasoning_content")
    assert reasoning and all("\u4e00" <= ch <= "\u9fff" or ch == "。" for ch in "".join(reasoning))
    assert parsed[-1]["usage"]["completion_tokens"] == 15


def test_english_question_gets_an_english_answer() -> None:
    assert "".join(expected_chunks(body("why? #chunks=10"))).isascii()


def test_exact_bytes_of_a_thinking_stream(upstream: MockUpstream) -> None:
    request = body("hi #chunks=2", model="glm-4.6")
    response = post(upstream.base_url, request)
    payloads = frames(response.content)
    first = json.loads(payloads[0])
    head = (
        f'{{"id":"{first["id"]}","created":{first["created"]},'
        '"object":"chat.completion.chunk","model":"glm-4.6","choices":[{"index":0,'
    )
    (reasoning,) = expected_reasoning_chunks(request)
    words = expected_chunks(request)
    assert payloads == [
        head + f'"delta":{{"role":"assistant","reasoning_content":"{reasoning}"}}}}]}}',
        head + f'"delta":{{"role":"assistant","content":"{words[0]}"}}}}]}}',
        head + f'"delta":{{"role":"assistant","content":"{words[1]}"}}}}]}}',
        head
        + '"finish_reason":"stop","delta":{"role":"assistant","content":""}}],"usage":'
        + '{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,'
        + '"prompt_tokens_details":{"cached_tokens":0},'
        + '"completion_tokens_details":{"reasoning_tokens":1}}}',
        "[DONE]",
    ]


def test_non_stream_thinking_answer_has_reasoning_content(upstream: MockUpstream) -> None:
    request = body("hi #chunks=4", model="glm-4.5", stream=False)
    answer = post(upstream.base_url, request).json()

    message = answer["choices"][0]["message"]
    assert message["reasoning_content"] == "".join(expected_reasoning_chunks(request))
    assert message["content"] == expected_text(request)
    assert answer["usage"]["completion_tokens_details"] == {"reasoning_tokens": 2}


def test_max_tokens_cuts_thinking_models_reasoning_first(upstream: MockUpstream) -> None:
    request = body("hi #chunks=8", model="glm-4.6", max_tokens=6)
    parsed = _stream(upstream, request)

    assert len(content_of(parsed, "reasoning_content")) == 4
    assert (
        content_of(parsed) == expected_chunks(request) == expected_chunks(body("hi #chunks=8"))[:2]
    )
    assert parsed[-1]["choices"][0]["finish_reason"] == "length"
