"""Request validation: the 400 answers and codes the real API gives for bad requests."""

from __future__ import annotations

import json

import pytest
from upstream_support import API_KEY, body, error_json, post

from mock_upstream.testing import MockUpstream, running_mock_upstream


def _error(response) -> dict:
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    return response.json()["error"]


@pytest.mark.parametrize("raw", [b"{not json", b"[1, 2]", b'"text"', b"\xff\xfe"])
def test_body_that_is_not_a_json_object_gets_1210(upstream: MockUpstream, raw: bytes) -> None:
    response = post(upstream.base_url, None, raw=raw)
    assert _error(response)["code"] == "1210"


def test_unknown_model_gets_1211_with_exact_body(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, body(model="gpt-4o"))

    assert response.status_code == 400
    assert response.content == error_json(
        "1211", "Model 'gpt-4o' does not exist; check the model code."
    )


@pytest.mark.parametrize(
    ("change", "code", "field"),
    [
        ({"model": None}, "1213", "model"),
        ({"model": 4}, "1214", "model"),
        ({"messages": None}, "1213", "messages"),
        ({"messages": []}, "1214", "messages"),
        ({"messages": "hello"}, "1214", "messages"),
        ({"messages": ["hello"]}, "1214", "messages[0]"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "1214", "messages[0].role"),
        ({"messages": [{"content": "hi"}]}, "1213", "messages[0].role"),
        ({"messages": [{"role": "user", "content": ""}]}, "1214", "messages[0].content"),
        ({"messages": [{"role": "user", "content": "   "}]}, "1214", "messages[0].content"),
        ({"messages": [{"role": "user"}]}, "1213", "messages[0].content"),
        ({"messages": [{"role": "user", "content": 42}]}, "1214", "messages[0].content"),
        ({"stream": "yes"}, "1214", "stream"),
        ({"temperature": 1.5}, "1210", "temperature"),
        ({"temperature": -0.1}, "1210", "temperature"),
        ({"temperature": "hot"}, "1214", "temperature"),
        ({"top_p": 2}, "1210", "top_p"),
        ({"max_tokens": 0}, "1214", "max_tokens"),
        ({"max_tokens": 1.5}, "1214", "max_tokens"),
        ({"max_tokens": True}, "1214", "max_tokens"),
        ({"do_sample": "no"}, "1214", "do_sample"),
        ({"stop": 3}, "1214", "stop"),
        ({"tools": {"type": "function"}}, "1214", "tools"),
        ({"request_id": 7}, "1214", "request_id"),
        ({"thinking": {"type": "maybe"}}, "1214", "thinking"),
    ],
)
def test_missing_or_bad_field_gets_its_code_naming_it(
    upstream: MockUpstream, change: dict, code: str, field: str
) -> None:
    response = post(upstream.base_url, {**body(), **change})

    error = _error(response)
    assert error["code"] == code
    if code == "1213":
        assert error["message"] == f"The {field} parameter is required."
    else:
        assert error["message"].startswith(f"Invalid {field} parameter: ")


def test_nulls_mean_not_given_as_the_official_sdk_sends_them(upstream: MockUpstream) -> None:
    payload = body(
        stream=None,
        temperature=None,
        top_p=None,
        max_tokens=None,
        response_format=None,
        thinking=None,
        tools=None,
        request_id=None,
    )
    response = post(upstream.base_url, payload)

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json; charset=UTF-8"


def test_conversation_with_every_role_and_multimodal_parts_is_accepted(
    upstream: MockUpstream,
) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "first"}]},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f"}}],
        },
        {"role": "tool", "content": "{}", "tool_call_id": "c1"},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "again"},
    ]
    payload = {**body(stream=False), "model": "glm-4.6v", "messages": messages}
    response = post(upstream.base_url, payload)

    assert response.status_code == 200
    # "Be brief." (3) + "first" (1) + "{}" (2) + "again" (1)
    assert response.json()["usage"]["prompt_tokens"] == 7


def test_prompt_over_the_limit_gets_1261() -> None:
    with running_mock_upstream(api_key=API_KEY, max_prompt_tokens=5) as upstream:
        fits = post(upstream.base_url, body("one two three four five", stream=False))
        too_long = post(upstream.base_url, body("one two three four five six"))

    assert fits.status_code == 200
    assert too_long.status_code == 400
    assert too_long.content == error_json("1261", "The prompt has 6 tokens, over the limit of 5.")


def test_models_option_limits_the_accepted_models() -> None:
    with running_mock_upstream(api_key=API_KEY, models=["glm-9"]) as upstream:
        accepted = post(upstream.base_url, {**body(stream=False), "model": "glm-9"})
        refused = post(upstream.base_url, body())

    assert accepted.status_code == 200 and accepted.json()["model"] == "glm-9"
    assert refused.json()["error"]["code"] == "1211"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hi #fualt=drop", "unknown directive #fualt"),
        ("hi #chunks=many", "#chunks needs a non-negative integer, got 'many'"),
        ("hi #delay", "#delay needs a value (#delay=...)"),
        ("hi #fault=explode", "unknown fault 'explode'"),
        ("hi #fault=drop,stall", "faults 'drop' and 'stall' cannot be combined"),
        ("hi #fault=drop&bogus=1", "unknown directive #bogus"),
        ("hi #stamp=yes", "#stamp takes no value"),
        ("hi #chunks=2000000", "#chunks must be at most 1000000"),
    ],
)
def test_bad_directive_gets_1214_saying_what_is_wrong(
    upstream: MockUpstream, text: str, message: str
) -> None:
    response = post(upstream.base_url, body(text))

    error = _error(response)
    assert error["code"] == "1214"
    assert error["message"].startswith(f"mock_upstream directive: {message}")


def test_hash_words_that_are_not_directives_are_plain_text(upstream: MockUpstream) -> None:
    response = post(
        upstream.base_url, body("tell me about #python and # headings ##", stream=False)
    )
    assert response.status_code == 200
    assert upstream.requests()[-1]["directives"] == {}


def test_validation_errors_are_recorded_with_their_code(upstream: MockUpstream) -> None:
    post(upstream.base_url, body(model="nope"))

    record = upstream.requests()[-1]
    assert (record["status"], record["error_code"]) == (400, "1211")
    assert record["body"]["model"] == "nope"
    assert record["outcome"] == "completed"


def test_unparsable_body_is_recorded_as_text(upstream: MockUpstream) -> None:
    post(upstream.base_url, None, raw=b"{oops")
    assert upstream.requests()[-1]["body"] == "{oops"
    assert json.dumps(upstream.requests())  # the log itself is always JSON
