"""The real API's refusals of well-formed JSON: ranges, per-model limits, tools, roles, ids."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from upstream_support import body, post

from mock_upstream.catalogue import CATALOGUE, TEXT_MODELS, VISION_MODELS, spec_for
from mock_upstream.options import DEFAULT_MODELS
from mock_upstream.testing import MockUpstream

FUNCTION = {"type": "function", "function": {"name": "get_weather", "parameters": {}}}
IMAGE = {"type": "image_url", "image_url": {"url": "https://img.example/a.png"}}
FILE = {"type": "file", "file": {"file_url": "https://files.example/a.pdf"}}


def _refused(upstream: MockUpstream, payload: dict[str, Any]) -> dict[str, Any]:
    response = post(upstream.base_url, payload)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert set(response.json()) == {"error"}
    return response.json()["error"]


def _messages(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(messages)}


def _user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


CASES: list[tuple[str, dict[str, Any], str, str]] = [
    # (id, change to body(), code, start of the message)
    ("temperature-above-1", {"temperature": 1.01}, "1210", "Invalid temperature parameter"),
    ("temperature-below-0", {"temperature": -1}, "1210", "Invalid temperature parameter"),
    ("top-p-below-0.01", {"top_p": 0.001}, "1210", "Invalid top_p parameter"),
    ("top-p-zero", {"top_p": 0}, "1210", "Invalid top_p parameter"),
    ("top-p-above-1", {"top_p": 1.5}, "1210", "Invalid top_p parameter"),
    ("max-tokens-legacy", {"max_tokens": 4097}, "1210", "Invalid max_tokens parameter"),
    (
        "max-tokens-glm-4.5",
        {"model": "glm-4.5", "max_tokens": 96 * 1024 + 1},
        "1210",
        "Invalid max_tokens parameter: glm-4.5 writes at most 98304 tokens",
    ),
    (
        "max-tokens-glm-5.3",
        {"model": "glm-5.3", "max_tokens": 131073},
        "1210",
        "Invalid max_tokens parameter",
    ),
    ("stop-five", {"stop": ["a", "b", "c", "d", "e"]}, "1210", "Invalid stop parameter"),
    ("stop-number", {"stop": 5}, "1214", "Invalid stop parameter"),
    ("stop-list-of-numbers", {"stop": [1]}, "1214", "Invalid stop parameter"),
    ("tool-choice-required", {"tool_choice": "required"}, "1214", "Invalid tool_choice"),
    ("tool-choice-none", {"tool_choice": "none"}, "1214", "Invalid tool_choice"),
    (
        "tool-choice-named",
        {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        "1214",
        "Invalid tool_choice",
    ),
    (
        "parts-to-text-model",
        _messages(_user([{"type": "text", "text": "hi"}])),
        "1214",
        "messages.content.type 参数非法",
    ),
    ("empty-parts-to-text-model", _messages(_user([])), "1214", "messages.content.type 参数非法"),
    (
        "thinking-disabled-glm-5.3",
        {"model": "glm-5.3", "thinking": {"type": "disabled"}},
        "1210",
        "Invalid thinking parameter: thinking cannot be disabled on glm-5.3",
    ),
    (
        "thinking-disabled-glm-5.3-flash",
        {"model": "glm-5.3-flash", "thinking": {"type": "disabled"}},
        "1210",
        "Invalid thinking parameter",
    ),
    (
        "thinking-disabled-glm-5.3-flashx",
        {"model": "glm-5.3-flashx", "thinking": {"type": "disabled"}},
        "1210",
        "Invalid thinking parameter",
    ),
    (
        "clear-thinking-not-bool",
        {"thinking": {"type": "enabled", "clear_thinking": "yes"}},
        "1214",
        "Invalid thinking.clear_thinking parameter",
    ),
    (
        "reasoning-effort-glm-4.6",
        {"model": "glm-4.6", "reasoning_effort": "high"},
        "1210",
        "Invalid reasoning_effort parameter: glm-4.6 does not take it",
    ),
    (
        "reasoning-effort-legacy",
        {"reasoning_effort": "low"},
        "1210",
        "Invalid reasoning_effort parameter",
    ),
    (
        "reasoning-effort-medium-glm-5.3",
        {"model": "glm-5.3", "reasoning_effort": "medium"},
        "1214",
        "Invalid reasoning_effort parameter: glm-5.3 takes high, low, max",
    ),
    (
        "reasoning-effort-thinking-off",
        {"model": "glm-5.2", "reasoning_effort": "high", "thinking": {"type": "disabled"}},
        "1210",
        "Invalid reasoning_effort parameter: it needs thinking enabled",
    ),
    (
        "reasoning-effort-not-a-string",
        {"model": "glm-5.3", "reasoning_effort": 3},
        "1214",
        "Invalid reasoning_effort parameter",
    ),
    (
        "tool-stream-without-stream",
        {"model": "glm-4.6", "tool_stream": True, "stream": False},
        "1210",
        "Invalid tool_stream parameter: it needs stream=true",
    ),
    ("tool-stream-not-bool", {"tool_stream": "yes"}, "1214", "Invalid tool_stream parameter"),
    ("tools-129", {"tools": [FUNCTION] * 129}, "1210", "Invalid tools parameter: at most 128"),
    ("tool-not-object", {"tools": ["get_weather"]}, "1214", "Invalid tools[0] parameter"),
    ("tool-without-type", {"tools": [{"function": {}}]}, "1213", "The tools[0].type parameter"),
    ("tool-bad-type", {"tools": [{"type": "code"}]}, "1214", "Invalid tools[0].type"),
    (
        "function-missing",
        {"tools": [{"type": "function"}]},
        "1213",
        "The tools[0].function parameter is required.",
    ),
    (
        "function-name-missing",
        {"tools": [{"type": "function", "function": {"description": "x"}}]},
        "1213",
        "The tools[0].function.name parameter is required.",
    ),
    (
        "function-name-bad",
        {"tools": [{"type": "function", "function": {"name": "get weather"}}]},
        "1214",
        "Invalid tools[0].function.name parameter",
    ),
    (
        "function-parameters-not-object",
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}]},
        "1214",
        "Invalid tools[0].function.parameters parameter",
    ),
    (
        "function-twice",
        {"tools": [FUNCTION, FUNCTION]},
        "1214",
        "Invalid tools[1].function.name parameter",
    ),
    (
        "retrieval-without-knowledge-id",
        {"tools": [{"type": "retrieval", "retrieval": {}}]},
        "1213",
        "The tools[0].retrieval.knowledge_id parameter is required.",
    ),
    (
        "web-search-count-51",
        {"tools": [{"type": "web_search", "web_search": {"count": 51}}]},
        "1210",
        "Invalid tools[0].web_search.count parameter",
    ),
    (
        "web-search-enable-not-bool",
        {"tools": [{"type": "web_search", "web_search": {"enable": "on"}}]},
        "1214",
        "Invalid tools[0].web_search.enable parameter",
    ),
    (
        "tool-message-without-id",
        _messages(_user("hi"), {"role": "tool", "content": "42"}),
        "1213",
        "The messages[1].tool_call_id parameter is required.",
    ),
    (
        "tool-message-without-content",
        _messages(_user("hi"), {"role": "tool", "tool_call_id": "call_1"}),
        "1213",
        "The messages[1].content parameter is required.",
    ),
    (
        "tool-message-id-not-string",
        _messages(_user("hi"), {"role": "tool", "tool_call_id": 1, "content": "42"}),
        "1214",
        "Invalid messages[1].tool_call_id parameter",
    ),
    (
        "assistant-tool-calls-not-list",
        _messages(_user("hi"), {"role": "assistant", "content": None, "tool_calls": {}}),
        "1214",
        "Invalid messages[1].tool_calls parameter",
    ),
    (
        "assistant-tool-call-without-name",
        _messages(_user("hi"), {"role": "assistant", "content": None, "tool_calls": [{"id": "c"}]}),
        "1214",
        "Invalid messages[1].tool_calls[0].function parameter",
    ),
    ("request-id-short", {"request_id": "abcde"}, "1214", "Invalid request_id parameter"),
    ("request-id-long", {"request_id": "r" * 65}, "1214", "Invalid request_id parameter"),
    ("user-id-short", {"user_id": "u" * 5}, "1214", "Invalid user_id parameter"),
    ("user-id-long", {"user_id": "u" * 129}, "1214", "Invalid user_id parameter"),
    (
        "response-format-json-schema",
        {"response_format": {"type": "json_schema"}},
        "1214",
        "Invalid response_format parameter",
    ),
    # Vision models: part rules.
    (
        "vision-unknown-part",
        {"model": "glm-4.6v", **_messages(_user([{"type": "audio", "audio": {}}]))},
        "1214",
        "messages.content.type 参数非法: messages[0].content[0].type",
    ),
    (
        "vision-empty-parts",
        {"model": "glm-4.6v", **_messages(_user([]))},
        "1214",
        "Invalid messages[0].content parameter",
    ),
    (
        "vision-file-with-image",
        {"model": "glm-4.6v", **_messages(_user([IMAGE, FILE]))},
        "1210",
        "messages[0].content: file parts cannot be mixed with image or video parts.",
    ),
    (
        "vision-old-file-url-with-video",
        {
            "model": "glm-5v-turbo",
            **_messages(
                _user(
                    [
                        {"type": "video_url", "video_url": {"url": "https://v.example/a.mp4"}},
                        {"type": "file_url", "file_url": {"url": "https://f.example/a.pdf"}},
                    ]
                )
            ),
        },
        "1210",
        "messages[0].content: file parts cannot be mixed",
    ),
    (
        "vision-image-without-url",
        {"model": "glm-4.6v", **_messages(_user([{"type": "image_url", "image_url": {}}]))},
        "1213",
        "The messages[0].content[0].image_url.url parameter is required.",
    ),
    (
        "vision-image-not-base64",
        {
            "model": "glm-4.6v",
            **_messages(_user([{"type": "image_url", "image_url": {"url": "not base64!"}}])),
        },
        "1214",
        "Invalid messages[0].content[0].image_url.url parameter",
    ),
    (
        "vision-image-over-5mb",
        {
            "model": "glm-4.6v-flash",
            **_messages(
                _user(
                    [
                        {
                            "type": "image_url",
                            "image_url": {
                                "url": base64.b64encode(
                                    b"\x89PNG" + b"\0" * (5 * 1024 * 1024)
                                ).decode()
                            },
                        }
                    ]
                )
            ),
        },
        "1210",
        "messages[0].content[0].image_url: the image is over 5 MB.",
    ),
]


@pytest.mark.parametrize(
    ("change", "code", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refusal_has_the_real_code_and_names_the_field(
    upstream: MockUpstream, change: dict[str, Any], code: str, message: str
) -> None:
    error = _refused(upstream, {**body(), **change})

    assert error["code"] == code
    assert error["message"].startswith(message), error["message"]
    record = upstream.requests()[-1]
    assert (record["status"], record["error_code"]) == (400, code)


@pytest.mark.parametrize("stream", [True, False])
def test_refusals_do_not_depend_on_stream(upstream: MockUpstream, stream: bool) -> None:
    assert _refused(upstream, body(stream=stream, temperature=2))["code"] == "1210"


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0, "top_p": 0.01, "max_tokens": 4096},
        {"temperature": 1, "top_p": 1, "stop": ["a", "b", "c", "d"]},
        {"stop": "one string"},
        {"tool_choice": "auto", "tools": [FUNCTION] * 1},
        {"tools": [{"type": "retrieval", "retrieval": {"knowledge_id": "k1"}}]},
        {"tools": [{"type": "web_search", "web_search": {"enable": True, "count": 50}}]},
        {"request_id": "r" * 6, "user_id": "u" * 128},
        {"request_id": "r" * 64, "user_id": "u" * 6},
        {"thinking": {"type": "enabled", "clear_thinking": False}},
        {"response_format": {"type": "json_object"}},
        {"model": "glm-4.5", "max_tokens": 98304},
        {"model": "glm-4.6", "max_tokens": 131072, "tool_stream": True, "stream": True},
        {"model": "glm-4.6v", "max_tokens": 32768},
        {"model": "glm-5.3", "reasoning_effort": "max", "thinking": {"type": "enabled"}},
        {"model": "glm-5.2", "reasoning_effort": "medium"},
        {"model": "glm-4.6", "thinking": {"type": "disabled"}},
        {"model": "glm-4-flash", "tool_stream": True, "stream": True},
    ],
)
def test_values_at_the_limits_are_accepted(upstream: MockUpstream, change: dict) -> None:
    response = post(upstream.base_url, {**body(), **change})
    assert response.status_code == 200, response.text


def test_every_catalogued_model_answers_by_default(upstream: MockUpstream) -> None:
    assert set(DEFAULT_MODELS) == set(CATALOGUE)
    for model in DEFAULT_MODELS:
        response = post(upstream.base_url, body("hi #chunks=1", stream=False, model=model))
        assert response.status_code == 200, (model, response.text)
        assert response.json()["model"] == model


def test_catalogue_splits_text_and_vision_models_as_published() -> None:
    assert set(VISION_MODELS) == {
        *("glm-4.6v", "glm-4.6v-flash", "glm-4.6v-flashx", "glm-4.5v"),
        *("glm-5v-turbo", "glm-5.3-flash", "glm-5.3-flashx"),
    }
    for legacy in ("glm-4", "glm-4-flash", "glm-4-air", "glm-4-plus", "glm-4-long"):
        assert legacy in TEXT_MODELS and CATALOGUE[legacy].max_output == 4096
    assert (CATALOGUE["glm-5.3"].context, CATALOGUE["glm-5.3"].max_output) == (1_000_000, 131072)
    assert (CATALOGUE["glm-4.7"].context, CATALOGUE["glm-4.7"].max_output) == (200_000, 131072)
    assert (CATALOGUE["glm-4.5"].context, CATALOGUE["glm-4.5"].max_output) == (128_000, 98304)
    assert CATALOGUE["glm-4.6v"].max_output == 32768 and CATALOGUE["glm-4.5v"].max_output == 16384
    assert spec_for("glm-9").vision is False  # an extra --models name is a text model


def test_vision_model_takes_every_part_shape(upstream: MockUpstream) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
    messages = [
        _user(
            [
                {"type": "text", "text": "look"},
                IMAGE,
                {"type": "image_url", "image_url": {"url": png}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64," + png}},
                {"type": "video_url", "video_url": {"url": "https://v.example/a.mp4"}},
            ]
        ),
        {"role": "assistant", "content": "ok"},
        _user([{"type": "text", "text": "and"}, FILE]),
        {"role": "assistant", "content": "ok"},
        _user(
            [
                {"type": "file", "file": {"file_data": base64.b64encode(b"%PDF-1.7").decode()}},
                {"type": "file_url", "file_url": {"url": "https://f.example/b.pdf"}},
            ]
        ),
    ]
    for model in VISION_MODELS:
        response = post(upstream.base_url, body(stream=False, model=model, messages=messages))
        assert response.status_code == 200, (model, response.text)
