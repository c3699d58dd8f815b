"""The successful answer, byte for byte: SSE framing, chunk layout, usage, determinism."""

from __future__ import annotations

import itertools
import json
import re
import time

from upstream_support import API_KEY, body, chunks, content_of, frames, post

from mock_upstream import expected_chunks, expected_reasoning_chunks
from mock_upstream.prompt import count_tokens
from mock_upstream.testing import MockUpstream, running_mock_upstream

ID_PATTERN = re.compile(r"^\d{14}[0-9a-f]{16}$")


def test_stream_headers_are_zhipus(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, body("hello"))

    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream;charset=UTF-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["transfer-encoding"] == "chunked"
    assert "content-length" not in response.headers


def test_stream_frames_are_exactly_zhipus_layout(upstream: MockUpstream) -> None:
    request = body("Tell me a story #chunks=3")
    before = int(time.time())
    response = post(upstream.base_url, request)

    payloads = frames(response.content)
    assert len(payloads) == 5 and payloads[-1] == "[DONE]"
    first = json.loads(payloads[0])
    chunk_id, created = first["id"], first["created"]
    assert ID_PATTERN.match(chunk_id) and before <= created <= time.time()
    words = expected_chunks(request)
    head = (
        f'{{"id":"{chunk_id}","created":{created},"object":"chat.completion.chunk",'
        '"model":"glm-4-flash","choices":[{"index":0,'
    )
    for payload, word in zip(payloads[:3], words, strict=True):
        assert payload == head + f'"delta":{{"role":"assistant","content":"{word}"}}}}]}}'
    usage = (
        '{"prompt_tokens":8,"completion_tokens":3,"total_tokens":11,'
        '"prompt_tokens_details":{"cached_tokens":0}}'
    )
    assert payloads[3] == (
        head
        + '"finish_reason":"stop","delta":{"role":"assistant","content":""}}],"usage":'
        + usage
        + "}"
    )
    assert response.content.endswith(b"\n\ndata: [DONE]\n\n")


def test_no_chunk_but_the_last_has_a_finish_reason_key(upstream: MockUpstream) -> None:
    parsed = chunks(post(upstream.base_url, body("hi #chunks=30")).content)

    assert all("finish_reason" not in c["choices"][0] for c in parsed[:-1])
    assert all(c["choices"][0]["delta"]["role"] == "assistant" for c in parsed)
    assert all("usage" not in c for c in parsed[:-1])
    assert list(parsed[-1]["choices"][0]) == ["index", "finish_reason", "delta"]
    assert len({(c["id"], c["created"], c["model"]) for c in parsed}) == 1


def test_streamed_text_is_what_expected_chunks_predicts(upstream: MockUpstream) -> None:
    request = body("What is a river?")
    parsed = chunks(post(upstream.base_url, request).content)

    assert content_of(parsed) == expected_chunks(request)
    assert 12 <= len(expected_chunks(request)) <= 24
    assert upstream.requests()[-1]["chunks_sent"] == len(expected_chunks(request))


def test_same_request_gets_the_same_text_and_other_prompts_other_text(
    upstream: MockUpstream,
) -> None:
    a1 = content_of(chunks(post(upstream.base_url, body("alpha #chunks=20")).content))
    a2 = content_of(chunks(post(upstream.base_url, body("alpha #chunks=20")).content))
    b = content_of(chunks(post(upstream.base_url, body("beta #chunks=20")).content))

    assert a1 == a2 and a1 != b


def test_directives_do_not_change_the_text_and_longer_answers_extend_shorter_ones(
    upstream: MockUpstream,
) -> None:
    short = content_of(chunks(post(upstream.base_url, body("alpha #chunks=5")).content))
    paced = content_of(chunks(post(upstream.base_url, body("#delay=1 alpha #chunks=5")).content))
    long = content_of(chunks(post(upstream.base_url, body("alpha #chunks=50")).content))

    assert short == paced == long[:5]
    assert "#" not in "".join(long)


def test_usage_counts_what_was_sent(upstream: MockUpstream) -> None:
    request = {
        **body("Count me #chunks=7"),
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Count me #chunks=7"},
        ],
    }
    last = chunks(post(upstream.base_url, request).content)[-1]

    prompt = count_tokens("You are terse.") + count_tokens("Count me #chunks=7")
    assert last["usage"] == {
        "prompt_tokens": prompt,
        "completion_tokens": 7,
        "total_tokens": prompt + 7,
        "prompt_tokens_details": {"cached_tokens": 0},
    }


def test_zero_chunks_still_ends_with_a_final_chunk_and_done(upstream: MockUpstream) -> None:
    parsed = chunks(post(upstream.base_url, body("quiet #chunks=0")).content)

    assert len(parsed) == 1
    assert parsed[0]["choices"][0]["finish_reason"] == "stop"
    assert parsed[0]["usage"]["completion_tokens"] == 0


def test_max_tokens_cuts_the_answer_with_finish_reason_length(upstream: MockUpstream) -> None:
    request = body("long one #chunks=10", max_tokens=4)
    parsed = chunks(post(upstream.base_url, request).content)

    assert content_of(parsed) == expected_chunks(request) == expected_chunks(body("long one"))[:4]
    assert parsed[-1]["choices"][0]["finish_reason"] == "length"
    assert parsed[-1]["usage"]["completion_tokens"] == 4


def test_thinking_enabled_streams_reasoning_before_content(upstream: MockUpstream) -> None:
    request = body("why? #chunks=6", thinking={"type": "enabled"})
    parsed = chunks(post(upstream.base_url, request).content)

    deltas = [c["choices"][0]["delta"] for c in parsed[:-1]]
    assert [d["reasoning_content"] for d in deltas[:3]] == expected_reasoning_chunks(request)
    assert [d["content"] for d in deltas[3:]] == expected_chunks(request)
    assert all(set(d) == {"role", "reasoning_content"} for d in deltas[:3])
    assert parsed[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}
    assert parsed[-1]["usage"]["completion_tokens"] == 9


def test_non_stream_answer_is_a_chat_completion_with_usage(upstream: MockUpstream) -> None:
    request = body("Tell me a story #chunks=3", stream=False, request_id="req-42")
    response = post(upstream.base_url, request)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    answer = response.json()
    assert list(answer) == [
        "choices", "created", "id", "model", "object", "request_id", "usage"
    ]  # fmt: skip
    assert answer["object"] == "chat.completion" and answer["request_id"] == "req-42"
    assert ID_PATTERN.match(answer["id"])
    assert answer["choices"] == [
        {
            "finish_reason": "stop",
            "index": 0,
            "message": {"content": "".join(expected_chunks(request)), "role": "assistant"},
        }
    ]
    assert answer["usage"]["completion_tokens"] == 3


def test_stream_false_by_default(upstream: MockUpstream) -> None:
    request = body("plain")
    del request["stream"]
    assert post(upstream.base_url, request).json()["object"] == "chat.completion"


def test_chunk_delay_and_first_token_latency_pace_the_stream(upstream: MockUpstream) -> None:
    started = time.monotonic()
    response = post(upstream.base_url, body("#stamp #chunks=5 #first=150 #delay=40"))
    elapsed = time.monotonic() - started

    stamps = [int(text) for text in content_of(chunks(response.content))]
    gaps_ms = [(b - a) / 1e6 for a, b in itertools.pairwise(stamps)]
    assert all(35 <= gap < 140 for gap in gaps_ms), gaps_ms
    assert elapsed >= 0.15 + 4 * 0.04 + 0.04  # first, four gaps, then the final chunk


def test_server_wide_timing_applies_unless_a_directive_overrides_it() -> None:
    with running_mock_upstream(api_key=API_KEY, first_token_ms=200, chunk_delay_ms=0) as up:
        started = time.monotonic()
        post(up.base_url, body("#chunks=2"))
        default = time.monotonic() - started
        started = time.monotonic()
        post(up.base_url, body("#chunks=2 #first=0"))
        overridden = time.monotonic() - started

    assert default >= 0.2 and overridden < default - 0.1
