"""A long coding-agent session as its client sends it on the next turn: a system prompt of
agent size, twelve tools with JSON schemas, and many turns of tool calls and their results.

The same session in the Messages API's shape (what Claude Code sends) and in the Responses API's
(what Codex sends), so that tests and measurements can replay it at any size. The text is words
(the fake upstream counts a word as one token), deterministic for a given size.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

TOOL_NAMES = (
    "Bash",
    "Read",
    "Write",
    "Edit",
    "Glob",
    "Grep",
    "WebFetch",
    "TodoWrite",
    "Task",
    "NotebookEdit",
    "KillShell",
    "ExitPlanMode",
)
_TEXT = "the relay reads each request and sends the conversation upstream while the agent waits"
_WORDS = _TEXT.split(" ")


def words(chars: int, salt: int = 0) -> str:
    """About ``chars`` characters of text (whole words), different for each ``salt``."""
    cycle = itertools.cycle(_WORDS[salt % len(_WORDS) :] + _WORDS[: salt % len(_WORDS)])
    out: list[str] = []
    size = 0
    while size < chars:
        word = next(cycle)
        out.append(word)
        size += len(word) + 1
    return " ".join(out)


def tool_schemas() -> list[dict[str, Any]]:
    """Twelve tools as Claude Code describes them: a JSON schema each, a long description."""
    return [
        {
            "name": name,
            "description": words(600, index),
            "input_schema": {
                "$schema": "http://json-schema.org/draft-07/schema#",
                "type": "object",
                "properties": {
                    "command": {"type": "string", "description": words(120, index)},
                    "path": {"type": "string", "description": "an absolute path"},
                    "timeout": {"type": "number", "minimum": 0, "maximum": 600000},
                    "flags": {"type": "array", "items": {"type": "string"}},
                },
                "required": ["command"],
                "additionalProperties": False,
            },
        }
        for index, name in enumerate(TOOL_NAMES)
    ]


def call_input(turn: int) -> dict[str, Any]:
    return {"command": f"grep -rn step{turn} src", "path": f"/work/src/module{turn}.py"}


def messages_request(
    *, turns: int, result_chars: int, system_chars: int = 20_000, model: str = "glm-4.7-flash"
) -> dict[str, Any]:
    """A Messages API body: ``turns`` tool_use / tool_result rounds after the task."""
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"type": "text", "text": "Fix the failing test. #chunks=2"}]}
    ]
    for turn in range(turns):
        messages.append(
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": f"Looking at step {turn}."},
                    {
                        "type": "tool_use",
                        "id": f"toolu_{turn:04d}",
                        "name": TOOL_NAMES[turn % len(TOOL_NAMES)],
                        "input": call_input(turn),
                    },
                ],
            }
        )
        messages.append(
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": f"toolu_{turn:04d}",
                        "content": words(result_chars, turn),
                    }
                ],
            }
        )
    messages[-1]["content"].append({"type": "text", "text": "Go on. #chunks=2"})
    return {
        "model": model,
        "max_tokens": 32000,
        "system": [
            {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1"},
            {"type": "text", "text": words(system_chars), "cache_control": {"type": "ephemeral"}},
        ],
        "tools": tool_schemas(),
        "messages": messages,
    }


def responses_request(
    *, turns: int, result_chars: int, system_chars: int = 20_000, model: str = "glm-4.7-flash"
) -> dict[str, Any]:
    """A Responses API body of the same session: the base prompt a ``developer`` message,
    each round a ``function_call`` and its ``function_call_output``."""
    items: list[dict[str, Any]] = [
        {"type": "message", "role": "developer", "content": words(system_chars)},
        {"type": "message", "role": "user", "content": "Fix the failing test. #chunks=2"},
    ]
    for turn in range(turns):
        items.append(
            {
                "type": "function_call",
                "call_id": f"call_{turn:04d}",
                "name": TOOL_NAMES[turn % len(TOOL_NAMES)],
                "arguments": json.dumps(call_input(turn)),
            }
        )
        items.append(
            {
                "type": "function_call_output",
                "call_id": f"call_{turn:04d}",
                "output": words(result_chars, turn),
            }
        )
    items.append({"type": "message", "role": "user", "content": "Go on. #chunks=2"})
    tools = [
        {
            "type": "function",
            "name": tool["name"],
            "description": tool["description"],
            "parameters": tool["input_schema"],
            "strict": False,
        }
        for tool in tool_schemas()
    ]
    return {"model": model, "input": items, "tools": tools, "store": False}
