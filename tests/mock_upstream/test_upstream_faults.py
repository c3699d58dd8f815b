"""Every fault a directive can ask for, as the client receives it."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from upstream_support import API_KEY, HTTP, body, chunks, content_of, error_json, frames, post

from mock_upstream import expected_chunks, expected_reasoning_chunks, expected_tool_call
from mock_upstream.testing import MockUpstream, running_mock_upstream
from mock_upstream.words import UNICODE_CHUNKS


def read_partial(base_url: str, payload: dict, read_timeout: float = 5.0) -> tuple[bytes, str]:
    """The bytes received before the stream ended, and how it ended ("eof" or an error name)."""
    received = b""
    headers = {"Authorization": f"Bearer {API_KEY}"}
    timeout = httpx.Timeout(5.0, read=read_timeout)
    try:
        with HTTP.stream(
            "POST", base_url + "/chat/completions", json=payload, headers=headers, timeout=timeout
        ) as response:
            for data in response.iter_raw():
                received += data
    except httpx.HTTPError as exc:
        return received, type(exc).__name__
    return received, "eof"


def complete_frames(raw: bytes) -> list[str]:
    """The whole `data:` frames in a stream cut off anywhere."""
    return frames(raw[: raw.rfind(b"\n\n") + 2]) if b"\n\n" in raw else []


# --- refusals -------------------------------------------------------------------------------

REFUSALS = [
    ("auth", 401, "1002", "The token is invalid."),
    ("expired", 401, "1003", "The token has expired; sign a new one."),
    (
        "rate_limit",
        429,
        "1302",
        "Too many concurrent requests for this API; lower the concurrency.",
    ),
    ("balance", 429, "1113", "The account balance is exhausted; top it up and retry."),
    ("too_long", 400, "1261", "The prompt is too long for this model."),
    ("sensitive_input", 400, "1301", "The input was flagged as unsafe or sensitive content."),
    ("server_error", 500, "500", "Internal Error"),
    ("unavailable", 503, "503", "The service is temporarily unavailable."),
]


@pytest.mark.parametrize(("fault", "status", "code", "message"), REFUSALS)
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "non-stream"])
def test_refusal_fault_gets_its_status_and_zhipu_error_body(
    upstream: MockUpstream, fault: str, status: int, code: str, message: str, stream: bool
) -> None:
    response = post(upstream.base_url, body(f"hi #fault={fault}", stream=stream))

    assert response.status_code == status
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.content == error_json(code, message)
    assert "retry-after" not in response.headers
    record = upstream.requests()[-1]
    assert (record["status"], record["error_code"], record["faults"]) == (status, code, [fault])


def test_retry_after_directive_sets_the_header(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, body("hi #fault=rate_limit #retry_after=2"))
    assert response.status_code == 429 and response.headers["retry-after"] == "2"


def test_server_wide_retry_after_goes_on_rate_limit_and_unavailable_only() -> None:
    with running_mock_upstream(api_key=API_KEY, retry_after=3) as up:
        limited = post(up.base_url, body("#fault=rate_limit"))
        unavailable = post(up.base_url, body("#fault=unavailable"))
        broke = post(up.base_url, body("#fault=balance"))

    assert limited.headers["retry-after"] == "3" and unavailable.headers["retry-after"] == "3"
    assert "retry-after" not in broke.headers


def test_fault_fails_the_first_n_identical_requests_then_succeeds(upstream: MockUpstream) -> None:
    request = body("retry me #fault=unavailable #times=2 #chunks=3")
    statuses = [post(upstream.base_url, request).status_code for _ in range(4)]
    other = post(upstream.base_url, body("another #fault=unavailable&times=2 #chunks=3"))

    assert statuses == [503, 503, 200, 200]
    assert other.status_code == 503  # counted per conversation
    faults = [r["faults"] for r in upstream.requests()]
    assert faults == [["unavailable"], ["unavailable"], [], [], ["unavailable"]]


def test_clear_resets_the_times_counter(upstream: MockUpstream) -> None:
    request = body("once #fault=server_error #times=1")
    assert post(upstream.base_url, request).status_code == 500
    assert post(upstream.base_url, request).status_code == 200
    upstream.clear()
    assert post(upstream.base_url, request).status_code == 500


def test_times_spares_the_shape_faults(upstream: MockUpstream) -> None:
    request = body("#fault=reasoning,drop #times=1 #chunks=4")
    _, ended = read_partial(upstream.base_url, request)
    later = chunks(post(upstream.base_url, request).content)

    assert ended == "RemoteProtocolError"
    assert content_of(later, "reasoning_content") == expected_reasoning_chunks(request)


# --- timing faults ---------------------------------------------------------------------------


def test_slow_headers_delays_the_response_headers(upstream: MockUpstream) -> None:
    request = body("#fault=slow_headers #hold=250 #chunks=2")
    started = time.monotonic()
    with HTTP.stream(
        "POST",
        upstream.base_url + "/chat/completions",
        json=request,
        headers={"Authorization": f"Bearer {API_KEY}"},
    ) as response:
        headers_after = time.monotonic() - started
        raw = response.read()

    assert headers_after >= 0.25
    assert content_of(chunks(raw)) == expected_chunks(request)


def test_slow_headers_uses_the_server_wide_delay_and_also_delays_refusals(
    upstream: MockUpstream,
) -> None:
    started = time.monotonic()
    response = post(upstream.base_url, body("#fault=slow_headers,rate_limit"))
    assert response.status_code == 429 and time.monotonic() - started >= 0.3  # fixture: 300 ms


def test_stall_stops_mid_stream_and_keeps_the_connection_open(upstream: MockUpstream) -> None:
    request = body("#fault=stall #hold=10000 #chunks=6")
    raw, ended = read_partial(upstream.base_url, request, read_timeout=0.4)

    assert ended == "ReadTimeout"
    sent = [json.loads(p)["choices"][0]["delta"]["content"] for p in complete_frames(raw)]
    assert sent == expected_chunks(request)[:3]  # half the answer by default
    assert raw.endswith(b"\n\n")


def test_stall_resumes_after_the_hold(upstream: MockUpstream) -> None:
    request = body("#fault=stall #hold=200 #after=1 #chunks=3")
    started = time.monotonic()
    parsed = chunks(post(upstream.base_url, request).content)

    assert time.monotonic() - started >= 0.2
    assert content_of(parsed) == expected_chunks(request)
    assert parsed[-1]["choices"][0]["finish_reason"] == "stop"


# --- mid-stream failures -------------------------------------------------------------------


def test_drop_closes_the_connection_mid_stream_without_done(upstream: MockUpstream) -> None:
    request = body("#fault=drop #after=2 #chunks=6")
    raw, ended = read_partial(upstream.base_url, request)

    assert ended == "RemoteProtocolError"  # the chunked body never finished
    payloads = frames(raw)
    assert [json.loads(p)["choices"][0]["delta"]["content"] for p in payloads] == (
        expected_chunks(request)[:2]
    )
    stats = upstream.wait_idle()
    assert stats["dropped_streams"] == 1 and stats["cancelled_streams"] == 0
    record = upstream.requests()[-1]
    assert (record["outcome"], record["client_gone"], record["chunks_sent"]) == (
        "dropped",
        False,
        2,
    )


def test_drop_before_the_first_chunk_sends_only_headers(upstream: MockUpstream) -> None:
    raw, ended = read_partial(upstream.base_url, body("#fault=drop #after=0"))
    assert (raw, ended) == (b"", "RemoteProtocolError")


def test_malformed_sends_one_non_json_data_line_then_carries_on(upstream: MockUpstream) -> None:
    request = body("#fault=malformed #after=2 #chunks=4")
    payloads = frames(post(upstream.base_url, request).content)

    assert len(payloads) == 4 + 1 + 1 + 1 and payloads[-1] == "[DONE]"
    bad = payloads[2]
    with pytest.raises(json.JSONDecodeError):
        json.loads(bad)
    assert bad.startswith('{"id":"') and bad.endswith('"delta":{"rol')
    good = [json.loads(p) for p in payloads[:2] + payloads[3:-1]]
    assert content_of(good) == expected_chunks(request)
    assert good[-1]["usage"]["completion_tokens"] == 4


def test_error_frame_arrives_mid_stream_and_ends_the_body(upstream: MockUpstream) -> None:
    request = body("#fault=error_frame #after=1 #chunks=4")
    response = post(upstream.base_url, request)

    payloads = frames(response.content)
    assert len(payloads) == 2
    assert json.loads(payloads[0])["choices"][0]["delta"]["content"] == expected_chunks(request)[0]
    assert payloads[1] == (
        '{"error":{"code":"1234","message":'
        '"Network error while generating the answer; please retry later."}}'
    )
    assert upstream.requests()[-1]["outcome"] == "completed"


@pytest.mark.parametrize(
    "reason", ["sensitive", "network_error", "length", "model_context_window_exceeded"]
)
def test_finish_reason_fault_ends_a_partial_answer_with_that_reason(
    upstream: MockUpstream, reason: str
) -> None:
    request = body(f"#fault={reason} #chunks=6")
    parsed = chunks(post(upstream.base_url, request).content)

    assert content_of(parsed) == expected_chunks(request)[:3]
    last = parsed[-1]["choices"][0]
    assert last == {
        "index": 0,
        "finish_reason": reason,
        "delta": {"role": "assistant", "content": ""},
    }
    assert parsed[-1]["usage"]["completion_tokens"] == 3


def test_finish_reason_fault_in_a_thinking_stream_counts_reasoning_first(
    upstream: MockUpstream,
) -> None:
    request = body("#fault=model_context_window_exceeded #after=5 #chunks=6", model="glm-4.6")
    parsed = chunks(post(upstream.base_url, request).content)

    assert content_of(parsed, "reasoning_content") == expected_reasoning_chunks(request)
    assert content_of(parsed) == expected_chunks(request)[:2]
    assert parsed[-1]["choices"][0]["finish_reason"] == "model_context_window_exceeded"
    assert parsed[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 3}


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [("rate_limit", 429, 1302), ("balance", 429, 1113), ("server_error", 500, 500)],
)
def test_numeric_code_sends_refusal_codes_as_numbers(
    upstream: MockUpstream, fault: str, status: int, code: int
) -> None:
    response = post(upstream.base_url, body(f"hi #fault={fault},numeric_code"))

    assert response.status_code == status
    assert response.json()["error"]["code"] == code
    assert response.content.startswith(b'{"error":{"code":%d,' % code)
    assert upstream.requests()[-1]["error_code"] == str(code)


def test_numeric_code_in_an_error_frame(upstream: MockUpstream) -> None:
    request = body("#fault=error_frame,numeric_code #after=2 #chunks=4")
    payloads = frames(post(upstream.base_url, request).content)

    assert [json.loads(p)["choices"][0]["delta"]["content"] for p in payloads[:2]] == (
        expected_chunks(request)[:2]
    )
    assert payloads[2] == (
        '{"error":{"code":1234,"message":'
        '"Network error while generating the answer; please retry later."}}'
    )
    stream_false = post(upstream.base_url, {**request, "stream": False})
    assert stream_false.json() == {"error": json.loads(payloads[2])["error"]}


def test_numeric_code_alone_changes_nothing(upstream: MockUpstream) -> None:
    request = body("hi #fault=numeric_code #chunks=3")
    assert content_of(chunks(post(upstream.base_url, request).content)) == expected_chunks(request)


def test_error_frame_after_tool_stream_fragments(upstream: MockUpstream) -> None:
    tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    request = body(
        "#tool=f #fault=error_frame #after=2",
        model="glm-4.6",
        tools=tools,
        tool_stream=True,
        thinking={"type": "disabled"},
    )
    payloads = frames(post(upstream.base_url, request).content)

    deltas = [json.loads(p)["choices"][0]["delta"]["tool_calls"] for p in payloads[:2]]
    assert deltas[0][0]["function"] == {"name": "f"}
    assert deltas[1] == [{"index": 0, "function": {"arguments": "{"}}]
    assert json.loads(payloads[2])["error"]["code"] == "1234"
    assert len(payloads) == 3


# --- shapes --------------------------------------------------------------------------------


def test_tool_call_arrives_as_one_complete_delta(upstream: MockUpstream) -> None:
    parameters = {"type": "object", "properties": {"query": {"type": "string"}}}
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": parameters}}]
    request = body("Weather in 北京? #fault=tool_call", tools=tools)
    parsed = chunks(post(upstream.base_url, request).content)

    assert len(parsed) == 2
    call = expected_tool_call(request)
    assert parsed[0]["choices"][0] == {
        "index": 0,
        "delta": {"role": "assistant", "tool_calls": [call]},
    }
    assert call is not None and call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"query": "Weather in 北京?"}
    assert call["id"].startswith("call_") and call["type"] == "function" and call["index"] == 0
    assert parsed[1]["choices"][0]["finish_reason"] == "tool_calls"
    assert parsed[1]["usage"]["completion_tokens"] > 0


def test_reasoning_streams_reasoning_content_before_content(upstream: MockUpstream) -> None:
    request = body("Think #fault=reasoning #chunks=4")
    parsed = chunks(post(upstream.base_url, request).content)

    reasoning = content_of(parsed, "reasoning_content")
    assert reasoning == expected_reasoning_chunks(request) and len(reasoning) == 2
    assert content_of(parsed) == expected_chunks(request)
    kinds = [next(k for k in c["choices"][0]["delta"] if k != "role") for c in parsed[:-1]]
    assert kinds == ["reasoning_content"] * 2 + ["content"] * 4
    assert parsed[-1]["usage"]["completion_tokens_details"] == {"reasoning_tokens": 2}


def test_unicode_arrives_split_across_chunks_and_escaped_on_one_line(
    upstream: MockUpstream,
) -> None:
    request = body("#fault=unicode")
    response = post(upstream.base_url, request)

    parsed = chunks(response.content)  # also checks one line per frame
    texts = content_of(parsed)
    assert texts == list(UNICODE_CHUNKS) == expected_chunks(request)
    assert texts[3] == "\r" and texts[4].startswith("\n")  # CRLF split across chunks
    assert texts[5] == "👩" and texts[6].startswith("\u200d")  # ZWJ sequence split
    assert texts[11].endswith("\\") and texts[12].startswith("n")  # backslash, then "n"
    for raw_char in ("\u2028", "\u2029", "\x85"):
        assert raw_char.encode() not in response.content
    assert b"\\u2028" in response.content
    assert "你好".encode() in response.content  # UTF-8 as is, not \u-escaped


def test_unicode_cycles_when_more_chunks_are_asked(upstream: MockUpstream) -> None:
    texts = content_of(chunks(post(upstream.base_url, body("#fault=unicode #chunks=40")).content))
    assert texts == (list(UNICODE_CHUNKS) * 3)[:40]


def test_crlf_separates_frames_with_crlf(upstream: MockUpstream) -> None:
    request = body("#fault=crlf #chunks=3")
    raw = post(upstream.base_url, request).content

    assert raw.count(b"\r\n\r\n") == 5 and b"\n\n" not in raw.replace(b"\r\n\r\n", b"")
    assert content_of(chunks(raw, end=b"\r\n\r\n")) == expected_chunks(request)


def test_stamp_sends_the_send_time_in_nanoseconds(upstream: MockUpstream) -> None:
    before = time.time_ns()
    texts = content_of(chunks(post(upstream.base_url, body("#stamp #chunks=5")).content))
    after = time.time_ns()

    assert all(text.endswith(" ") and text[:-1].isdigit() for text in texts)
    stamps = [int(text) for text in texts]
    assert len(stamps) == 5 and stamps == sorted(stamps)
    assert before <= stamps[0] and stamps[-1] <= after
    with pytest.raises(ValueError, match="cannot be predicted"):
        expected_chunks(body("#stamp"))


def test_shapes_combine_with_a_failure(upstream: MockUpstream) -> None:
    request = body("#fault=reasoning,unicode,network_error #after=3 #chunks=4")
    parsed = chunks(post(upstream.base_url, request).content)

    assert content_of(parsed, "reasoning_content") == expected_reasoning_chunks(request)
    assert content_of(parsed) == list(UNICODE_CHUNKS[:1])
    assert parsed[-1]["choices"][0]["finish_reason"] == "network_error"


# --- the same faults without streaming -----------------------------------------------------


def test_non_stream_drop_closes_the_connection_halfway_through_the_body(
    upstream: MockUpstream,
) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        post(upstream.base_url, body("#fault=drop", stream=False))


def test_non_stream_malformed_is_a_truncated_json_body(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, body("#fault=malformed", stream=False))
    assert response.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_non_stream_error_frame_is_an_error_object_with_status_200(
    upstream: MockUpstream,
) -> None:
    response = post(upstream.base_url, body("#fault=error_frame", stream=False))
    assert response.status_code == 200 and response.json()["error"]["code"] == "1234"


def test_non_stream_stall_waits_then_answers(upstream: MockUpstream) -> None:
    started = time.monotonic()
    response = post(upstream.base_url, body("#fault=stall #hold=200", stream=False))
    assert time.monotonic() - started >= 0.2 and response.json()["object"] == "chat.completion"


def test_non_stream_shapes_and_finish_reasons(upstream: MockUpstream) -> None:
    sensitive = body("#fault=sensitive #chunks=6", stream=False)
    thinking = body("#fault=reasoning #chunks=4", stream=False)
    tool = body("#fault=tool_call", stream=False)

    s = post(upstream.base_url, sensitive).json()
    r = post(upstream.base_url, thinking).json()
    t = post(upstream.base_url, tool).json()

    assert s["choices"][0]["finish_reason"] == "sensitive"
    assert s["choices"][0]["message"]["content"] == "".join(expected_chunks(sensitive)[:3])
    assert s["usage"]["completion_tokens"] == 3
    assert r["choices"][0]["message"]["reasoning_content"] == "".join(
        expected_reasoning_chunks(thinking)
    )
    call = expected_tool_call(tool)
    assert call is not None
    assert t["choices"][0]["finish_reason"] == "tool_calls"
    assert t["choices"][0]["message"]["tool_calls"] == [
        {"id": call["id"], "type": "function", "function": call["function"]}
    ]


def test_non_stream_answer_takes_as_long_as_the_stream_would(upstream: MockUpstream) -> None:
    started = time.monotonic()
    post(upstream.base_url, body("#chunks=4 #first=100 #delay=30", stream=False))
    assert time.monotonic() - started >= 0.1 + 4 * 0.03
