"""One test per row of the README's request table: the field is passed, mapped, dropped or
refused exactly as the row says, on each front end it names, and a refusal costs no upstream
request. The table and ``ROWS`` must list the same fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.stack import DevStack
from tests.support.upstream import DEFAULT_SEARCH_TOOL

README = Path(__file__).resolve().parents[2] / "README.md"
MODEL = "glm-4-flash"
USER = [{"role": "user", "content": "Hello #chunks=2"}]
FN = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
STRICT_FN = {**FN, "function": {**FN["function"], "strict": True}}
G = {"type": "function", "function": {"name": "g"}}
REQUIRED_CALL = [
    {
        "role": "system",
        "content": "You must answer by calling one of the provided functions, not with text, "
        "in this turn.",
    },
    *USER,
]
NAMED_CALL = [
    {
        "role": "system",
        "content": "You must answer by calling the function g, not with text, in this turn.",
    },
    *USER,
]
VISION_PARTS = [
    {"type": "text", "text": "Hi #chunks=2"},
    {"type": "image_url", "image_url": {"url": "https://img.example/y.png"}},
]


@dataclass(frozen=True)
class Case:
    """A request's extra fields and the outcome: ``sent`` (a subset of the upstream body; a
    value ``ABSENT`` means the key must be missing) or ``refused`` (the error code)."""

    fields: dict[str, Any]
    sent: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None
    fronts: tuple[str, ...] = ("/v1", "/chat")


ABSENT = object()
V1 = ("/v1",)
CHAT = ("/chat",)

ROWS: dict[str, list[Case]] = {
    "`model`": [
        Case({"model": "glm-4.7"}, {"model": "glm-4.7"}),
        Case({"model": "gpt-4o"}, refused="model_not_allowed"),
    ],
    "`messages`": [
        Case(
            {
                "messages": [
                    {
                        "role": "developer",
                        "content": [
                            {"type": "text", "text": "Be"},
                            {"type": "text", "text": "brief"},
                        ],
                    },
                    {"role": "user", "content": "Hi", "name": "ann"},
                    {"role": "assistant", "content": None},
                    {"role": "user", "content": "Again #chunks=2"},
                ]
            },
            {
                "messages": [
                    {"role": "system", "content": "Be\nbrief"},
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": ""},
                    {"role": "user", "content": "Again #chunks=2"},
                ]
            },
            fronts=V1,
        ),
        Case(
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                    }
                ]
            },
            refused="unsupported_content",
        ),
        Case(
            {"model": "glm-4.6v", "messages": [{"role": "user", "content": VISION_PARTS}]},
            {"messages": [{"role": "user", "content": VISION_PARTS}]},
        ),
        Case({"messages": [*USER, {"role": "tool", "content": "x"}]}, refused="invalid_messages"),
    ],
    "`stream`": [Case({"stream": False}, {"stream": True}, fronts=V1)],
    "`stream_options`": [
        Case(
            {
                "stream": True,
                "stream_options": {"include_usage": True, "include_obfuscation": False},
            },
            {},
            fronts=V1,
        ),
        Case(
            {"stream": True, "stream_options": {"chunk_size": 4}},
            refused="unsupported_parameter",
            fronts=V1,
        ),
    ],
    "`max_tokens`, `max_completion_tokens`": [
        Case({"max_tokens": 100, "max_completion_tokens": 50}, {"max_tokens": 50}, fronts=V1),
        Case({"max_tokens": 100}, {"max_tokens": 100}),
        Case({}, {"max_tokens": 4096}),  # DEFAULT_MAX_TOKENS lowered to glm-4-flash's limit
        Case({"model": "glm-4.7", "max_tokens": 131072}, {"max_tokens": 131072}),
        Case({"max_tokens": 4097}, refused="invalid_parameter"),
    ],
    "`temperature`": [
        Case({"temperature": 0}, {"temperature": 0}),
        Case({"temperature": 0.7}, {"temperature": 0.7}),
        Case({"temperature": 1.5}, {"temperature": 1}),
        Case({"temperature": 2.5}, refused="invalid_parameter"),
    ],
    "`top_p`": [
        Case({"top_p": 0.01}, {"top_p": 0.01}),
        Case({"top_p": 0.005}, refused="invalid_parameter"),
    ],
    "`stop`": [
        Case({"stop": "END"}, {"stop": ["END"]}),
        Case({"stop": ["a", "b", "c", "d"]}, {"stop": ["a", "b", "c", "d"]}),
        Case({"stop": ["a", "b", "c", "d", "e"]}, refused="invalid_parameter"),
    ],
    "`do_sample`": [
        Case({"do_sample": False}, {"do_sample": False}),
        Case({"do_sample": "no"}, refused="invalid_parameter"),
    ],
    "`response_format`": [
        Case(
            {"response_format": {"type": "json_object"}},
            {"response_format": {"type": "json_object"}},
        ),
        Case({"response_format": {"type": "text"}}, {"response_format": {"type": "text"}}),
        Case(
            {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "a", "schema": {"type": "object"}},
                }
            },
            {"response_format": {"type": "json_object"}},
        ),
        Case({"response_format": {"type": "grammar"}}, refused="unsupported_parameter"),
    ],
    "`tools`": [
        Case(
            {"tools": [FN, {"type": "web_search", "web_search": {"enable": False}}]},
            {"tools": [FN, {"type": "web_search", "web_search": {"enable": False}}]},
        ),
        Case(
            {"tools": [{"type": "retrieval", "retrieval": {"knowledge_id": "k1"}}]},
            {
                "tools": [{"type": "retrieval", "retrieval": {"knowledge_id": "k1"}}],
                "tool_stream": ABSENT,
            },
        ),
        Case(
            {"tools": [STRICT_FN, {**G, "function": {**G["function"], "strict": False}}]},
            {"tools": [FN, G]},
        ),
        Case({"tools": [{"type": "file_search"}]}, refused="unsupported_parameter"),
    ],
    "`tool_choice`": [
        Case({"tools": [FN], "tool_choice": "auto"}, {"tool_choice": "auto"}),
        Case({"tools": [FN], "tool_choice": "none"}, {"tools": ABSENT, "tool_choice": ABSENT}),
        Case(
            {"tools": [FN], "tool_choice": "required"},
            {"tools": [FN], "tool_choice": "auto", "messages": REQUIRED_CALL},
        ),
        Case(
            {"tools": [FN, G], "tool_choice": {"type": "function", "function": {"name": "g"}}},
            {"tools": [G], "tool_choice": "auto", "messages": NAMED_CALL},
        ),
        Case({"tool_choice": "required"}, refused="invalid_parameter"),
        Case(
            {"tools": [FN], "tool_choice": {"type": "function", "function": {"name": "h"}}},
            refused="invalid_parameter",
        ),
    ],
    "`tool_stream`": [
        Case({"model": "glm-4.7", "tools": [FN]}, {"tool_stream": True}),
        Case({"model": "glm-4.7", "tools": [FN], "tool_stream": False}, {"tool_stream": ABSENT}),
        Case(
            {"model": "glm-4.5", "tools": [FN], "tool_stream": True},
            refused="unsupported_parameter",
        ),
    ],
    "`thinking`": [
        Case(
            {"model": "glm-4.7", "thinking": {"type": "disabled", "clear_thinking": True}},
            {"thinking": {"type": "disabled", "clear_thinking": True}},
        ),
        Case({"model": "glm-4.7", "thinking": "on"}, {"thinking": {"type": "enabled"}}),
        Case({"thinking": "on"}, refused="unsupported_parameter"),
        Case(
            {"model": "glm-5.3", "thinking": {"type": "disabled"}}, refused="unsupported_parameter"
        ),
        Case(
            {"model": "glm-4.7", "thinking": {"type": "enabled", "budget_tokens": 100}},
            refused="unsupported_parameter",
        ),
    ],
    "`reasoning_effort`": [
        Case({"model": "glm-5.3", "reasoning_effort": "minimal"}, {"reasoning_effort": "low"}),
        Case(
            {"model": "glm-4.7", "reasoning_effort": "none"},
            {"thinking": {"type": "disabled"}, "reasoning_effort": ABSENT},
        ),
        Case(
            {"model": "glm-4.7", "reasoning_effort": "high"},
            {"thinking": {"type": "enabled"}, "reasoning_effort": ABSENT},
        ),
        Case({"model": "glm-5.3", "reasoning_effort": "turbo"}, refused="unsupported_parameter"),
        Case({"model": "glm-4-flash", "reasoning_effort": "low"}, refused="unsupported_parameter"),
    ],
    "`user`, `safety_identifier`": [
        Case({"user": "alice-1"}, {"user_id": "alice-1"}),
        Case({"user": "bob"}, {"user_id": "u-81b637d8fcd2c6da6359e6963113a117"}),
        Case({"safety_identifier": "carol-2"}, {"user_id": "carol-2"}, fronts=V1),
    ],
    "`n`": [
        Case({"n": 1}, {"n": ABSENT}, fronts=V1),
        Case({"n": 2}, refused="unsupported_parameter", fronts=V1),
    ],
    "`parallel_tool_calls`": [
        Case({"tools": [FN], "parallel_tool_calls": True}, {"parallel_tool_calls": ABSENT}),
        Case({"tools": [FN], "parallel_tool_calls": False}, {"parallel_tool_calls": ABSENT}),
        Case({"parallel_tool_calls": "no"}, refused="invalid_parameter"),
    ],
    "`presence_penalty`, `frequency_penalty`": [
        Case(
            {"presence_penalty": 0, "frequency_penalty": 0.0},
            {"presence_penalty": ABSENT},
            fronts=V1,
        ),
        Case({"frequency_penalty": 0.5}, refused="unsupported_parameter", fronts=V1),
    ],
    "`logprobs`, `top_logprobs`": [
        Case({"logprobs": False, "top_logprobs": 0}, {"logprobs": ABSENT}, fronts=V1),
        Case({"logprobs": True}, refused="unsupported_parameter", fronts=V1),
    ],
    "`logit_bias`": [
        Case({"logit_bias": {}}, {"logit_bias": ABSENT}, fronts=V1),
        Case({"logit_bias": {"50256": -100}}, refused="unsupported_parameter", fronts=V1),
    ],
    "`seed`": [Case({"seed": 7}, refused="unsupported_parameter", fronts=V1)],
    "`store`, `metadata`": [
        Case({"store": False, "metadata": {}}, {"store": ABSENT}, fronts=V1),
        Case({"metadata": {"a": "b"}}, refused="unsupported_parameter", fronts=V1),
    ],
    "`service_tier`": [
        Case({"service_tier": "auto"}, {"service_tier": ABSENT}, fronts=V1),
        Case({"service_tier": "flex"}, refused="unsupported_parameter", fronts=V1),
    ],
    "`modalities`": [
        Case({"modalities": ["text"]}, {"modalities": ABSENT}, fronts=V1),
        Case({"modalities": ["text", "audio"]}, refused="unsupported_parameter", fronts=V1),
    ],
    "`audio`, `prediction`, `verbosity`, `web_search_options`, `functions`, `function_call`": [
        Case({name: value}, refused="unsupported_parameter", fronts=V1)
        for name, value in (
            ("audio", {"voice": "alloy"}),
            ("prediction", {"type": "content", "content": "x"}),
            ("verbosity", "low"),
            ("web_search_options", {}),
            ("functions", [FN["function"]]),
            ("function_call", "auto"),
        )
    ],
    "`prompt_cache_key`, `prompt_cache_retention`": [
        Case(
            {"prompt_cache_key": "k", "prompt_cache_retention": "24h"},
            {"prompt_cache_key": ABSENT},
            fronts=V1,
        )
    ],
    "`conversation`": [Case({"conversation": 5}, refused="invalid_parameter", fronts=CHAT)],
    "`web_search`": [
        Case(
            {"web_search": True},
            {"tools": [DEFAULT_SEARCH_TOOL], "tool_choice": "auto"},
            fronts=CHAT,
        ),
        Case({"web_search": False}, {"tools": ABSENT}, fronts=CHAT),
        Case({"web_search": "yes"}, refused="invalid_parameter", fronts=CHAT),
    ],
    "any other field": [
        Case({"best_of": 2}, refused="unknown_parameter"),
        Case({"best_of": None}, {"best_of": ABSENT}, fronts=V1),  # null: not set
    ],
}


def readme_rows() -> list[str]:
    text = README.read_text()
    table = text.split("#### Request fields", 1)[1].split("\n\n|", 1)[1].split("\n\n", 1)[0]
    return [re.split(r"\s\|\s", line.strip("| "))[0] for line in ("|" + table).splitlines()[2:]]


def test_the_readme_table_and_these_rows_list_the_same_fields() -> None:
    assert readme_rows() == list(ROWS)


CASES = [
    pytest.param(row, case, front, id=f"{row.replace('`', '')}-{i}{front}")
    for row, cases in ROWS.items()
    for i, case in enumerate(cases)
    for front in case.fronts
]


@pytest.mark.parametrize(("row", "case", "front"), CASES)
def test_request_field(
    stack: DevStack, client: httpx.Client, upstream_log: None, row: str, case: Case, front: str
) -> None:
    body = {"model": MODEL, "messages": USER, **case.fields}
    if front == "/chat" and body.get("model") == MODEL and "model" not in case.fields:
        body.pop("model")
    response = client.post(
        stack.url + ("/v1/chat/completions" if front == "/v1" else "/chat"),
        json=body,
        headers={"Authorization": f"Bearer {stack.token}"},
    )
    assert stack.upstream is not None
    records = client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]

    if case.refused is not None:
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == case.refused
        assert records == []
        return
    assert response.status_code == 200, response.text
    (record,) = records
    assert record["status"] == 200
    sent = record["body"]
    for key, value in case.sent.items():
        if value is ABSENT:
            assert key not in sent, (key, sent)
        else:
            assert sent[key] == value, (key, sent)
