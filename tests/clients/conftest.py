"""The client matrix: real client libraries against the local function URL and the fake Zhipu.

Node clients (``node/``: the Vercel AI SDK, the Anthropic TypeScript SDK, Claude Code) are
installed once per session from the committed lock file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.support.node import NODE_DIR, NPM


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``npm ci`` from the committed lock file, once per session."""
    assert NPM is not None, "CI must have npm"
    subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        timeout=300,
    )
    return NODE_DIR / "node_modules"
