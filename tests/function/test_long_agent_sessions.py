"""A long coding-agent session at the default input limits: Claude Code's shape through
``/v1/messages`` with the anthropic SDK, Codex's through ``/v1/responses`` with openai-python;
each is answered, and its whole history reaches the fake upstream."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from anthropic import Anthropic
from openai import OpenAI

from devtools.agent_session import TOOL_NAMES, call_input, messages_request, responses_request
from devtools.stack import DevStack
from mock_upstream.answer import expected_text
from tests.hardening.support import mint

pytestmark = pytest.mark.usefixtures("upstream_log")
# Its own caller, with no practical quota: the limits under test are the input limits.
TOKEN = mint("long-agent-sessions")
TURNS = 60
RESULT_CHARS = 4_500  # 60 results of 4.5 KB: with the system prompt and tools, about 300 KB


def assert_history_arrived(upstream: dict[str, Any], results: list[str], system: str) -> None:
    """The system prompt, the task, every tool call with its arguments and every result, in
    order, then the new question: nothing dropped or cut."""
    messages = upstream["messages"]
    assert len(messages) == 2 + 2 * TURNS + 1
    assert messages[0] == {"role": "system", "content": system}
    assert messages[1] == {"role": "user", "content": "Fix the failing test. #chunks=2"}
    for turn in range(TURNS):
        call, result = messages[2 + 2 * turn], messages[3 + 2 * turn]
        (sent_call,) = call["tool_calls"]
        assert call["role"] == "assistant"
        assert sent_call["function"]["name"] == TOOL_NAMES[turn % len(TOOL_NAMES)]
        assert json.loads(sent_call["function"]["arguments"]) == call_input(turn)
        assert result == {"role": "tool", "tool_call_id": sent_call["id"], "content": results[turn]}
    assert messages[-1] == {"role": "user", "content": "Go on. #chunks=2"}
    assert [tool["function"]["name"] for tool in upstream["tools"]] == list(TOOL_NAMES)


def test_a_long_claude_code_session_is_answered_whole(
    stack: DevStack, sent: Callable[[], list[Any]]
) -> None:
    body = messages_request(turns=TURNS, result_chars=RESULT_CHARS)
    # Over every limit the relay had before agents: 64 KB, 32,000 characters, 50 messages.
    assert len(json.dumps(body)) > 290_000 and len(body["messages"]) > 100

    claude = Anthropic(base_url=stack.url, api_key=TOKEN, max_retries=0, timeout=60)
    with claude, claude.messages.stream(**body) as stream:
        message = stream.get_final_message()

    [upstream] = sent()
    system = "\n\n".join(block["text"] for block in body["system"])
    results = [m["content"][0]["content"] for m in body["messages"][2::2]]
    assert_history_arrived(upstream, results, system)
    assert upstream["tools"][0]["function"]["parameters"] == body["tools"][0]["input_schema"]
    assert message.stop_reason == "end_turn"
    assert message.content[-1].type == "text"
    assert message.content[-1].text == expected_text(upstream)


def test_a_long_codex_session_is_answered_whole(
    stack: DevStack, sent: Callable[[], list[Any]]
) -> None:
    body = responses_request(turns=TURNS, result_chars=RESULT_CHARS)
    assert len(json.dumps(body)) > 290_000 and len(body["input"]) > 100

    oai = OpenAI(base_url=f"{stack.url}/v1", api_key=TOKEN, max_retries=0, timeout=60)
    with oai, oai.responses.stream(**body) as stream:
        response = stream.get_final_response()

    [upstream] = sent()
    results = [item["output"] for item in body["input"] if item["type"] == "function_call_output"]
    assert_history_arrived(upstream, results, body["input"][0]["content"])
    assert upstream["tools"][0]["function"]["parameters"] == body["tools"][0]["parameters"]
    assert response.status == "completed"
    assert response.output_text == expected_text(upstream)
