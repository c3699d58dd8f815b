"""Claude Code (``@anthropic-ai/claude-code``, pinned in ``node/package.json``) against the local
function URL, offline: ``claude -p`` prints the answer, and a run in which the model calls Claude
Code's ``Read`` tool shows Claude Code executing it and the answer that follows. Claude Code asks
for a ``claude-*`` model: the default ``MODEL_ALIASES`` make that GLM-5.1."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from devtools.stack import DevStack
from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls
from tests.support.node import needs_node

pytestmark = needs_node


def claude(
    stack: DevStack,
    node_modules: Path,
    workdir: Path,
    prompt: str,
    base_url: str | None = None,
    token_variable: str = "ANTHROPIC_AUTH_TOKEN",
) -> str:
    """Run ``claude -p`` in ``workdir`` (also its home: no settings, no login) against the
    function URL (or ``base_url``) and return stdout. ``ANTHROPIC_AUTH_TOKEN`` sends the token
    as a bearer token, ``ANTHROPIC_API_KEY`` as ``x-api-key``."""
    env = {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "ANTHROPIC_BASE_URL": base_url or stack.url,
        token_variable: stack.token,
        # Offline: no update checks, telemetry or error reports.
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_AUTOUPDATER": "1",
        "DISABLE_ERROR_REPORTING": "1",
    }
    done = subprocess.run(
        [str(node_modules / ".bin" / "claude"), "-p", prompt],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


@pytest.mark.parametrize("token_variable", ["ANTHROPIC_AUTH_TOKEN", "ANTHROPIC_API_KEY"])
def test_claude_code_prints_the_answer(
    stack, sent, node_modules, tmp_path, token_variable: str
) -> None:
    out = claude(stack, node_modules, tmp_path, "Say hello", token_variable=token_variable)

    bodies = sent()
    assert bodies, "Claude Code never reached the upstream"
    body = bodies[-1]
    assert body["model"] == "glm-5.1"  # the default alias of claude-opus*
    assert body["messages"][0]["role"] == "system"  # system blocks and the system turn, joined
    assert body["messages"][-1]["role"] == "user"
    assert {tool["type"] for tool in body["tools"]} == {"function"}
    assert out.strip() == expected_text(body).strip()


def test_claude_code_runs_a_read_tool_call_and_answers_after_it(
    stack, sent, node_modules, tmp_path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("The river is 42 km long.\n")
    out = claude(stack, node_modules, tmp_path, f"Read the notes #tool=Read&args=file_path:{notes}")

    # Its main model's requests (a background one, to the haiku alias, would not be these).
    first, second = [body for body in sent() if body["model"] == "glm-5.1"][-2:]
    [call] = expected_tool_calls(first)
    assert call["function"]["name"] == "Read"
    assistant, result = second["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == call["id"]
    # Claude Code sent the thinking block back; its reasoning reached the upstream again.
    assert assistant["reasoning_content"] == "".join(expected_reasoning_chunks(first))
    assert result["role"] == "tool" and result["tool_call_id"] == call["id"]
    assert "The river is 42 km long." in result["content"]  # Claude Code read the file
    assert out.strip() == expected_text(second).strip()
    assert out.startswith('Read returned "')


def test_claude_code_works_behind_the_rest_api_stage(
    stack, sent, node_modules, tmp_path, rest_api_url: str
) -> None:
    """API Gateway's streaming REST API (payload 1.0 events, the stage in the path) as the base
    URL: what ``FrontDoor=ApiGateway`` deploys."""
    out = claude(stack, node_modules, tmp_path, "Say hello", base_url=rest_api_url)

    body = sent()[-1]
    assert body["model"] == "glm-5.1"
    assert out.strip() == expected_text(body).strip()
