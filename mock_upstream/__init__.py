"""A fake Zhipu (BigModel) chat server for tests, benchmarks and local runs.

Public face: `create_app` / `build_app` (the Starlette app), `MockOptions`, `expected_chunks`
(the exact answer a body gets), and `mock_upstream.testing.running_mock_upstream` (a server in a
background thread). See README.md for the directives and the wire format.
"""

from mock_upstream.answer import expected_chunks, expected_reasoning_chunks, expected_tool_call
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
    "expected_tool_call",
]
