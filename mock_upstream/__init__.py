"""A fake Zhipu (BigModel) chat server for tests, benchmarks and local runs.

Public face: `create_app` / `build_app` (the Starlette app), `MockOptions`, `expected_chunks`
and its siblings (the exact answer a body gets), and
`mock_upstream.testing.running_mock_upstream` (a server in a background thread). See README.md
for the directives, the model catalogue and the wire format.
"""

from mock_upstream.answer import (
    expected_chunks,
    expected_reasoning_chunks,
    expected_text,
    expected_tool_call,
    expected_tool_call_deltas,
    expected_tool_calls,
    expected_web_search,
)
from mock_upstream.app import API_PREFIX, CHAT_PATH, build_app, create_app
from mock_upstream.options import MockOptions

__all__ = [
    "API_PREFIX",
    "CHAT_PATH",
    "MockOptions",
    "build_app",
    "create_app",
    "expected_chunks",
    "expected_reasoning_chunks",
    "expected_text",
    "expected_tool_call",
    "expected_tool_call_deltas",
    "expected_tool_calls",
    "expected_web_search",
]
