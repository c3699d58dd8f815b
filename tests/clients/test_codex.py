"""The Codex CLI (``@openai/codex``, pinned in node/package.json; a native binary shipped in the
npm package) against the local function URL, offline: ``codex exec`` prints the answer, and a
run in which the model calls Codex's shell tool (``exec_command``), Codex runs the command and the
model answers from its output. Codex speaks only the Responses API, with ``store: false`` and the
reasoning sealed in ``encrypted_content``: the second turn must carry the reasoning back."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from devtools.stack import DevStack
from mock_upstream.answer import expected_reasoning_chunks, expected_text, expected_tool_calls
from tests.support.node import needs_node

pytestmark = needs_node
ZHIPU_TOOL_TYPES = {"function", "web_search", "retrieval"}


def codex(
    stack: DevStack, node_modules: Path, home: Path, prompt: str, model: str, extra: str = ""
) -> str:
    """``codex exec PROMPT`` with a config of its own in ``home`` (``extra``: more top-level
    settings); what it printed on stdout."""
    config = home / ".codex"
    config.mkdir(parents=True, exist_ok=True)
    (config / "config.toml").write_text(
        extra + f'model = "{model}"\n'
        'model_provider = "relay"\n'
        'approval_policy = "never"\n'
        "check_for_update_on_startup = false\n\n"
        "[model_providers.relay]\n"
        'name = "glm-relay"\n'
        f'base_url = "{stack.url}/v1"\n'
        'wire_api = "responses"\n'
        'env_key = "GLM_RELAY_TOKEN"\n\n'
        "[analytics]\nenabled = false\n\n"
        "[features]\nplugins = false\n"
    )
    work = home / "work"
    work.mkdir(exist_ok=True)
    done = subprocess.run(
        [
            str(node_modules / ".bin" / "codex"),
            "exec",
            "--skip-git-repo-check",
            "--ephemeral",
            "--color",
            "never",
            "--sandbox",
            "read-only",
            prompt,
        ],
        cwd=work,
        env={
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(home),
            "CODEX_HOME": str(config),
            "GLM_RELAY_TOKEN": stack.token,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_codex_exec_prints_the_answer(stack, sent, node_modules, tmp_path) -> None:
    printed = codex(stack, node_modules, tmp_path, "Tell me about otters", "glm-4.7")

    (body,) = sent()
    assert body["messages"][-1] == {"role": "user", "content": "Tell me about otters"}
    assert {tool["type"] for tool in body["tools"]} <= ZHIPU_TOOL_TYPES
    names = [tool["function"]["name"] for tool in body["tools"]]
    assert "exec_command" in names
    assert any("__" in name for name in names)  # Codex's namespace tool, flattened
    assert printed.strip() == expected_text(body)


@pytest.mark.parametrize("model", ["glm-5.1"])
def test_codex_runs_the_shell_tool_and_answers_from_its_output(
    stack, sent, node_modules, tmp_path, model
) -> None:
    prompt = "echo relay-tool-ok #tool=exec_command"
    printed = codex(stack, node_modules, tmp_path, prompt, model)

    asked, answered = sent()
    (call,) = expected_tool_calls(asked)
    assert call["function"]["name"] == "exec_command"
    turn, result = answered["messages"][-2:]
    assert turn["tool_calls"][0]["id"] == call["id"]
    # store: false, so the reasoning came back sealed and was replayed to the upstream
    assert turn["reasoning_content"] == "".join(expected_reasoning_chunks(asked))
    assert result["role"] == "tool" and result["tool_call_id"] == call["id"]
    assert "relay-tool-ok" in result["content"]  # Codex ran the command
    assert printed.strip() == expected_text(answered).strip()


def test_codex_with_a_reasoning_effort_on_a_model_of_one_depth_thinks(
    stack, sent, node_modules, tmp_path
) -> None:
    effort = 'model_reasoning_effort = "high"\n'
    printed = codex(stack, node_modules, tmp_path, "Tell me about otters", "glm-5.1", effort)

    (body,) = sent()
    assert body["thinking"] == {"type": "enabled"} and "reasoning_effort" not in body
    assert printed.strip() == expected_text(body)
