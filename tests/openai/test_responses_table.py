"""One test per row of docs/responses-api.md's tables (request fields, input items, tools): each
is passed, mapped, dropped or refused exactly as its row says, and a refusal costs no upstream
request. The tables and ``ROWS`` must list the same entries."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.stack import DevStack
from tests.support.upstream import DEFAULT_SEARCH_TOOL

DOC = Path(__file__).resolve().parents[2] / "docs" / "responses-api.md"
MODEL = "glm-4-flash"
HELLO = "Hello #chunks=2"
USER = [{"role": "user", "content": HELLO}]
FN = {"type": "function", "name": "f", "parameters": {"type": "object"}}
SENT_FN = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
CALL = {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"}
OUTPUT = {"type": "function_call_output", "call_id": "c1", "output": "done"}
CALL_TURN = {
    "role": "assistant",
    "content": "",
    "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
}
ABSENT = object()
Post = Callable[[dict[str, Any]], httpx.Response]


@dataclass(frozen=True)
class Case:
    """Request fields and the outcome: ``sent`` (a subset of the upstream body; ``ABSENT``: the
    key is missing), ``refused`` (the error code), ``answer`` (checks the Response object).
    ``before`` runs an earlier request and returns fields that refer to it."""

    fields: dict[str, Any]
    sent: dict[str, Any] = field(default_factory=dict)
    refused: str | None = None
    answer: Callable[[dict[str, Any]], None] | None = None
    before: Callable[[Post], dict[str, Any]] | None = None


def _answer_has(**expected: Any) -> Callable[[dict[str, Any]], None]:
    def check(response: dict[str, Any]) -> None:
        for key, value in expected.items():
            assert response[key] == value, (key, response[key])

    return check


def _stored(post: Post) -> dict[str, Any]:
    first = post({"model": MODEL, "input": "Earlier #chunks=2", "instructions": "Old"}).json()
    return {"previous_response_id": first["id"]}


def _referenced(post: Post) -> dict[str, Any]:
    first = post({"model": MODEL, "input": "Earlier #chunks=2"}).json()
    (message,) = first["output"]
    reference = {"type": "item_reference", "id": message["id"]}
    return {"input": [{"role": "user", "content": "Earlier #chunks=2"}, reference, *USER]}


def _messages(*messages: dict[str, Any]) -> dict[str, Any]:
    return {"messages": list(messages)}


def _continued(before: Callable[[Post], dict[str, Any]]) -> Case:
    """A request that continues an earlier, stored one: its turn comes before the new input."""
    earlier = [
        {"role": "user", "content": "Earlier #chunks=2"},
        {"role": "assistant", "content": "Earlier words"},
    ]
    return Case({}, _messages(*earlier, *USER), before=before)


def _replayed_call(
    tool: dict[str, Any], call: dict[str, Any], output_type: str, sent_as: tuple[str, str]
) -> Case:
    """A call item of a translated tool and its output, replayed as a function call turn."""
    name, arguments = sent_as
    function = {"name": name, "arguments": arguments}
    return Case(
        {
            "tools": [tool],
            "input": [*USER, call, {"type": output_type, "call_id": "c1", "output": "ok"}],
        },
        _messages(
            *USER,
            {**CALL_TURN, "tool_calls": [{"id": "c1", "type": "function", "function": function}]},
            {"role": "tool", "tool_call_id": "c1", "content": "ok"},
        ),
    )


FIELD_ROWS: dict[str, list[Case]] = {
    "`model`": [
        Case({"model": "glm-4.7"}, {"model": "glm-4.7"}),
        Case({"model": "gpt-4o"}, refused="model_not_allowed"),
    ],
    "`input`": [
        Case({"input": HELLO}, _messages(*USER)),
        Case({"input": []}, refused="invalid_messages"),
        Case({"input": " "}, refused="invalid_messages"),
    ],
    "`instructions`": [
        Case(
            {"instructions": "Be brief."},
            _messages({"role": "system", "content": "Be brief."}, *USER),
        ),
        Case({"instructions": 3}, refused="invalid_parameter"),
    ],
    "`stream`": [Case({"stream": "yes"}, refused="invalid_parameter")],
    "`stream_options`": [
        Case({"stream_options": {"include_obfuscation": False}}, {}),
        Case({"stream_options": {"colour": 1}}, refused="unsupported_parameter"),
    ],
    "`max_output_tokens`": [
        Case({"max_output_tokens": 100}, {"max_tokens": 100}),
        Case({"max_output_tokens": 0}, refused="invalid_parameter"),
    ],
    "`temperature`, `top_p`": [
        Case({"temperature": 0.5, "top_p": 0.9}, {"temperature": 0.5, "top_p": 0.9}),
        Case({"top_p": 0}, refused="invalid_parameter"),
    ],
    "`tools`": [
        Case({"tools": [FN]}, {"tools": [SENT_FN], "tool_choice": "auto"}),
        Case({"tools": {"f": 1}}, refused="invalid_parameter"),
    ],
    "`tool_choice`": [
        Case({"tools": [FN], "tool_choice": "none"}, {"tools": ABSENT}),
        Case({"tools": [FN], "tool_choice": {"type": "web_search"}}, {"tool_choice": "auto"}),
        Case({"tools": [FN], "tool_choice": {"type": "mcp"}}, refused="unsupported_parameter"),
    ],
    "`parallel_tool_calls`": [
        Case({"tools": [FN], "parallel_tool_calls": False}, {"tools": [SENT_FN]}),
        Case({"parallel_tool_calls": "no"}, refused="invalid_parameter"),
    ],
    "`reasoning`": [
        Case(
            {"model": "glm-5.2", "reasoning": {"effort": "minimal", "summary": "detailed"}},
            {"reasoning_effort": "low"},
        ),
        Case(
            {"model": "glm-5.1", "reasoning": {"effort": "none"}},
            {"thinking": {"type": "disabled"}},
        ),
        Case(  # Codex's model_reasoning_effort on a model that reasons at one depth
            {"model": "glm-5.1", "reasoning": {"effort": "high"}},
            {"thinking": {"type": "enabled"}, "reasoning_effort": ABSENT},
        ),
        Case({"reasoning": {"colour": "red"}}, refused="unsupported_parameter"),
    ],
    "`text`": [
        Case(
            {"text": {"format": {"type": "json_object"}, "verbosity": "low"}},
            {"response_format": {"type": "json_object"}},
        ),
        Case({"text": {"format": {"type": "grammar"}}}, refused="unsupported_parameter"),
    ],
    "`include`": [
        Case({"include": ["web_search_call.action.sources"]}, {}),
        Case({"include": ["message.output_text.logprobs"]}, refused="unsupported_parameter"),
    ],
    "`store`": [
        Case({"store": False}, {}, answer=_answer_has(store=False)),
        Case({}, {}, answer=_answer_has(store=True)),
    ],
    "`previous_response_id`": [
        _continued(_stored),
        Case({"previous_response_id": "resp_unknown"}, refused="not_found"),
    ],
    "`truncation`": [
        Case({"truncation": "auto"}, {}, answer=_answer_has(truncation="auto")),
        Case({"truncation": "middle"}, refused="invalid_parameter"),
    ],
    "`user`, `safety_identifier`": [
        Case({"safety_identifier": "user-123456"}, {"user_id": "user-123456"}),
    ],
    "`metadata`": [
        Case({"metadata": {"k": "v"}}, {}, answer=_answer_has(metadata={"k": "v"})),
        Case({"metadata": {"k": 1}}, refused="invalid_parameter"),
    ],
    "`prompt_cache_key`, `prompt_cache_retention`, `client_metadata`": [
        Case(
            {"prompt_cache_key": "k", "client_metadata": {"a": "b"}}, {"prompt_cache_key": ABSENT}
        ),
    ],
    "`background`": [
        Case({"background": False}, {}),
        Case({"background": True}, refused="unsupported_parameter"),
    ],
    "`service_tier`": [
        Case({"service_tier": "auto"}, {}),
        Case({"service_tier": "flex"}, refused="unsupported_parameter"),
    ],
    "`top_logprobs`": [
        Case({"top_logprobs": 0}, {}),
        Case({"top_logprobs": 2}, refused="unsupported_parameter"),
    ],
    "`max_tool_calls`, `conversation`, `prompt`": [
        Case({"max_tool_calls": 3}, refused="unsupported_parameter"),
        Case({"conversation": "conv_1"}, refused="unsupported_parameter"),
    ],
}
ITEM_ROWS: dict[str, list[Case]] = {
    "`message`": [
        Case(
            {
                "input": [
                    {"role": "developer", "content": [{"type": "input_text", "text": "Be brief"}]},
                    {
                        "type": "message",
                        "role": "user",
                        "content": [{"type": "input_text", "text": HELLO}],
                    },
                ]
            },
            _messages({"role": "system", "content": "Be brief"}, *USER),
        ),
        Case(
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            refused="unsupported_content",
        ),
    ],
    "`reasoning`": [
        Case(
            {
                "input": [
                    *USER,
                    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Hm"}]},
                    CALL,
                    OUTPUT,
                ],
                "tools": [FN],
            },
            _messages(
                *USER,
                {**CALL_TURN, "reasoning_content": "Hm"},
                {"role": "tool", "tool_call_id": "c1", "content": "done"},
            ),
        ),
        Case(
            {"input": [*USER, {"type": "reasoning", "encrypted_content": "glmr1.forged.seal"}]},
            refused="invalid_parameter",
        ),
        Case(
            {"input": [*USER, {"type": "reasoning", "summary": "Hm"}, CALL]},
            refused="invalid_messages",
        ),
        Case(  # a reasoning with no turn of its own (an answer cut short) is not another's
            {
                "input": [
                    {"role": "user", "content": "Earlier"},
                    {"type": "reasoning", "summary": [{"type": "summary_text", "text": "Hm"}]},
                    {"role": "user", "content": "Again"},
                    {"role": "assistant", "content": "Words"},
                    *USER,
                ]
            },
            _messages(
                {"role": "user", "content": "Earlier"},
                {"role": "user", "content": "Again"},
                {"role": "assistant", "content": "Words"},
                *USER,
            ),
        ),
    ],
    "`function_call`": [
        Case(
            {"input": [*USER, CALL, OUTPUT], "tools": [FN]},
            _messages(*USER, CALL_TURN, {"role": "tool", "tool_call_id": "c1", "content": "done"}),
        ),
    ],
    "`function_call_output`": [
        Case(
            {
                "input": [
                    *USER,
                    CALL,
                    {**OUTPUT, "output": [{"type": "input_text", "text": "done"}]},
                ]
            },
            _messages(*USER, CALL_TURN, {"role": "tool", "tool_call_id": "c1", "content": "done"}),
        ),
        Case({"input": [*USER, OUTPUT]}, refused="invalid_messages"),  # answers no call
        Case({"input": [*USER, CALL, {**OUTPUT, "call_id": None}]}, refused="invalid_messages"),
    ],
    "`custom_tool_call`, `custom_tool_call_output`": [
        _replayed_call(
            {"type": "custom", "name": "patch"},
            {"type": "custom_tool_call", "call_id": "c1", "name": "patch", "input": "x"},
            "custom_tool_call_output",
            ("patch", '{"input": "x"}'),
        ),
    ],
    "`local_shell_call`, `local_shell_call_output`": [
        _replayed_call(
            {"type": "local_shell"},
            {
                "type": "local_shell_call",
                "call_id": "c1",
                "action": {"type": "exec", "command": ["ls"]},
            },
            "local_shell_call_output",
            ("local_shell", '{"command": ["ls"]}'),
        ),
    ],
    "`item_reference`": [
        _continued(_referenced),
        Case({"input": [{"type": "item_reference", "id": "msg_nothing000"}]}, refused="not_found"),
        Case({"input": [{"type": "item_reference"}, *USER]}, refused="not_found"),
    ],
    "`web_search_call`": [
        Case(
            {"input": [{"type": "web_search_call", "id": "ws_1", "status": "completed"}, *USER]},
            _messages(*USER),
        ),
    ],
    "other types": [
        Case(
            {"input": [{"type": "computer_call", "id": "x"}, *USER]}, refused="unsupported_content"
        ),
    ],
}
TOOL_ROWS: dict[str, list[Case]] = {
    "`function`": [
        Case({"tools": [{**FN, "strict": True}]}, {"tools": [SENT_FN]}),
        Case({"tools": [FN, FN]}, refused="invalid_parameter"),  # the same tool twice
    ],
    "`namespace`": [
        Case(
            {"tools": [{"type": "namespace", "name": "ns", "tools": [FN]}]},
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "ns__f", "parameters": {"type": "object"}},
                    }
                ]
            },
        ),
        Case(
            {
                "tools": [
                    {"type": "namespace", "name": "ns", "description": "Group.", "tools": [FN]}
                ]
            },
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "ns__f",
                            "description": "ns: Group.",
                            "parameters": {"type": "object"},
                        },
                    }
                ]
            },
        ),
    ],
    "`custom`": [
        Case(
            {"tools": [{"type": "custom", "name": "patch", "description": "Patch files."}]},
            {
                "tools": [
                    {
                        "type": "function",
                        "function": {
                            "name": "patch",
                            "description": "Patch files.",
                            "parameters": {
                                "type": "object",
                                "properties": {
                                    "input": {
                                        "type": "string",
                                        "description": "The tool's free-form input.",
                                    }
                                },
                                "required": ["input"],
                            },
                        },
                    }
                ]
            },
        ),
    ],
    "`local_shell`": [
        Case({"tools": [{"type": "local_shell"}]}, {"tool_choice": "auto"}),
    ],
    "`web_search`, `web_search_preview`": [
        Case({"tools": [{"type": "web_search_preview"}]}, {"tools": [DEFAULT_SEARCH_TOOL]}),
        Case({"tools": [{"type": "web_search", "external_web_access": False}]}, {"tools": ABSENT}),
    ],
    "other types": [
        Case(
            {"tools": [{"type": "image_generation"}, {"type": "mcp", "server_label": "x"}]},
            {"tools": ABSENT},
        ),
    ],
}
TABLES = {"Request fields": FIELD_ROWS, "Input items": ITEM_ROWS, "Tools": TOOL_ROWS}


def doc_table(title: str) -> list[str]:
    """The first column of the table under ``## title`` in the doc."""
    section = DOC.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    table = ("\n" + section).split("\n\n| ", 1)[1].split("\n\n", 1)[0]
    return [re.split(r"\s\|\s", line.strip("| "))[0] for line in ("| " + table).splitlines()[2:]]


@pytest.mark.parametrize("title", TABLES)
def test_the_doc_tables_and_these_rows_list_the_same_entries(title: str) -> None:
    assert doc_table(title) == list(TABLES[title])


CASES = [
    pytest.param(case, id=f"{title[:5]}-{row.replace('`', '')}-{index}")
    for title, rows in TABLES.items()
    for row, cases in rows.items()
    for index, case in enumerate(cases)
]


@pytest.mark.parametrize("case", CASES)
def test_responses_field(
    stack: DevStack, client: httpx.Client, upstream_log: None, case: Case
) -> None:
    def post(body: dict[str, Any]) -> httpx.Response:
        return client.post(
            stack.url + "/v1/responses",
            json=body,
            headers={"Authorization": f"Bearer {stack.token}"},
        )

    assert stack.upstream is not None
    log = f"{stack.upstream.origin}/_mock/requests"
    fields = dict(case.fields)
    if case.before is not None:
        fields.update(case.before(post))
        client.delete(log)
    response = post({"model": MODEL, "input": HELLO, **fields})
    records = client.get(log).json()["requests"]

    if case.refused is not None:
        assert response.status_code in (400, 404), response.text
        assert response.json()["error"]["code"] == case.refused
        assert records == []
        return
    assert response.status_code == 200, response.text
    (record,) = records
    sent = record["body"]
    for key, value in case.sent.items():
        if value is ABSENT:
            assert key not in sent, (key, sent)
        elif key == "messages" and case.before is not None:
            assert [m["role"] for m in sent[key]] == [m["role"] for m in value]
            assert sent[key][0] == value[0] and sent[key][-1] == value[-1]
        else:
            assert sent[key] == value, (key, sent)
    if case.answer is not None:
        case.answer(response.json())
