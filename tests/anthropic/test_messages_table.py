"""One test per row of the Messages request table (docs/messages-api.md): each field is mapped,
dropped or refused as its row says, and a refusal costs no upstream request. The table and
``ROWS`` must list the same fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.stack import DevStack

DOC = Path(__file__).resolve().parents[2] / "docs" / "messages-api.md"
ASK = [{"role": "user", "content": "Hello #chunks=2"}]
TOOL = {"name": "f", "input_schema": {"type": "object"}}
FN = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
ABSENT = object()


@dataclass(frozen=True)
class Case:
    """A request's fields over the defaults, and what reached the upstream (a subset; ``ABSENT``:
    the key is missing) or the code it was refused with."""

    fields: dict[str, Any]
    sent: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None


ROWS: dict[str, list[Case]] = {
    "`model`": [
        Case({"model": "claude-haiku-4-5"}, {"model": "glm-4.7-flash"}),
        Case({"model": "gpt-4o"}, refused="model_not_allowed"),
    ],
    "`max_tokens`": [
        Case({"max_tokens": 7}, {"max_tokens": 7}),
        Case({"max_tokens": None}, refused="invalid_parameter"),
        Case({"max_tokens": 10**7}, refused="invalid_parameter"),
    ],
    "`system`": [
        Case(
            {"system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]},
            {"messages": [{"role": "system", "content": "A\n\nB"}, ASK[0]]},
        ),
    ],
    "`messages`": [
        Case(
            {"messages": [*ASK, {"role": "system", "content": "Late rule"}]},
            {"messages": [{"role": "system", "content": "Late rule"}, ASK[0]]},
        ),
        Case({"messages": []}, refused="invalid_messages"),
    ],
    "`stream`": [Case({"stream": "yes"}, refused="invalid_parameter")],
    "`temperature`, `top_p`": [
        Case({"temperature": 0.3, "top_p": 0.5}, {"temperature": 0.3, "top_p": 0.5}),
        Case({"top_p": 0}, refused="invalid_parameter"),
        Case({"temperature": 1.5}, refused="invalid_parameter"),  # Anthropic's range
    ],
    "`top_k`": [
        Case({"top_k": 1}, {"do_sample": False}),
        Case({"top_k": 40}, refused="unsupported_parameter"),
    ],
    "`stop_sequences`": [
        Case({"stop_sequences": ["END"]}, {"stop": ["END"]}),
        Case({"stop_sequences": ["a", "b", "c", "d", "e"]}, refused="invalid_parameter"),
    ],
    "`tools`": [
        Case(
            {
                "tools": [
                    {**TOOL, "defer_loading": True, "cache_control": {"type": "ephemeral"}},
                    {"name": "g", "input_schema": {"type": "object"}, "strict": True},
                    {"type": "web_search_20250305", "name": "web_search"},
                    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
                ]
            },
            {
                "tools": [
                    FN,
                    {
                        "type": "function",
                        "function": {"name": "g", "parameters": {"type": "object"}},
                    },
                ],
                "tool_choice": "auto",
            },
        ),
        Case({"tools": [{"name": "f"}]}, refused="invalid_parameter"),
    ],
    "`tool_choice`": [
        Case({"tools": [TOOL], "tool_choice": {"type": "auto"}}, {"tool_choice": "auto"}),
        Case({"tools": [TOOL], "tool_choice": {"type": "none"}}, {"tools": ABSENT}),
        Case({"tools": [TOOL], "tool_choice": {"type": "any"}}, {"tool_choice": "auto"}),
        Case(
            {"tools": [TOOL, {**TOOL, "name": "g"}], "tool_choice": {"type": "tool", "name": "f"}},
            {"tools": [FN], "tool_choice": "auto"},
        ),
        Case(
            {"tools": [TOOL], "tool_choice": {"type": "tool", "name": "h"}},
            refused="invalid_parameter",
        ),
        Case({"tools": [TOOL], "tool_choice": {"type": "sometimes"}}, refused="invalid_parameter"),
    ],
    "`thinking`": [
        Case(
            {
                "model": "glm-5.2",
                "max_tokens": 9000,
                "thinking": {"type": "enabled", "budget_tokens": 8000},
            },
            {"thinking": {"type": "enabled"}, "reasoning_effort": "medium"},
        ),
        Case(
            {"model": "glm-5.1", "thinking": {"type": "disabled"}},
            {"thinking": {"type": "disabled"}},
        ),
        Case({"thinking": {"type": "enabled", "budget_tokens": 10}}, refused="invalid_parameter"),
        Case(
            {"model": "glm-5.1", "thinking": {"type": "enabled", "budget_tokens": 2000}},
            refused="invalid_parameter",  # not below max_tokens
        ),
    ],
    "`output_config`": [
        Case(
            {"model": "glm-5.3", "output_config": {"effort": "medium"}},
            {"reasoning_effort": "high"},
        ),
        Case(
            {"model": "glm-5.1", "output_config": {"effort": "high"}},
            {"reasoning_effort": ABSENT},
        ),
        Case(
            {"output_config": {"format": {"type": "json_schema", "schema": {"type": "object"}}}},
            {"response_format": {"type": "json_object"}},
        ),
    ],
    "`context_management`": [
        Case(
            {
                "model": "glm-5.1",
                "thinking": {"type": "adaptive"},
                "context_management": {
                    "edits": [{"type": "clear_thinking_20251015", "keep": "all"}]
                },
            },
            {"thinking": {"type": "enabled", "clear_thinking": False}},
        ),
        Case(
            {"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
            refused="unsupported_parameter",
        ),
    ],
    "`metadata`": [
        Case({"metadata": {"user_id": "user-1234"}}, {"user_id": "user-1234"}),
        Case({"metadata": {"tier": "gold"}}, refused="invalid_parameter"),
    ],
    "`service_tier`": [Case({"service_tier": "auto"}, {"service_tier": ABSENT})],
    "any other field": [Case({"container": "c-1"}, refused="unknown_parameter")],
}


def table_rows() -> list[str]:
    text = DOC.read_text()
    table = (
        text.split("#### Messages request fields", 1)[1].split("\n\n|", 1)[1].split("\n\n", 1)[0]
    )
    return [re.split(r"\s\|\s", line.strip("| "))[0] for line in ("|" + table).splitlines()[2:]]


def test_the_table_and_these_rows_list_the_same_fields() -> None:
    assert table_rows() == list(ROWS)


CASES = [
    pytest.param(row, case, id=f"{row.replace('`', '')}-{i}")
    for row, cases in ROWS.items()
    for i, case in enumerate(cases)
]


@pytest.mark.parametrize(("row", "case"), CASES)
def test_messages_request_field(
    stack: DevStack, client: httpx.Client, upstream_log: None, row: str, case: Case
) -> None:
    body = {"model": "glm-4-flash", "max_tokens": 50, "messages": ASK, **case.fields}
    response = client.post(
        stack.url + "/v1/messages", json=body, headers={"x-api-key": stack.token}
    )
    assert stack.upstream is not None
    records = client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]

    if case.refused is not None:
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["type"] == "invalid_request_error"
        assert error["message"].startswith(case.refused + ": "), error
        assert records == []
        return
    assert response.status_code == 200, response.text
    (record,) = records
    sent = record["body"]
    for key, value in case.sent.items():
        if value is ABSENT:
            assert key not in sent, (key, sent)
        else:
            assert sent[key] == value, (key, sent)
