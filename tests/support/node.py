"""Node clients of the relay (tests/clients/node): the AI SDK, the Codex CLI, the Anthropic SDK and
Claude Code, installed with
``npm ci`` from the committed lock file."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from devtools.stack import DevStack

NODE_DIR = Path(__file__).resolve().parents[1] / "clients" / "node"
NODE, NPM = shutil.which("node"), shutil.which("npm")

needs_node = pytest.mark.skipif(
    (NODE is None or NPM is None) and not os.environ.get("CI"),
    reason="node and npm are not installed here (CI installs them: apt-get install nodejs npm)",
)


def install() -> Path:
    """``npm ci`` (the Codex CLI's native binary comes in its npm package); the modules' path."""
    assert NPM is not None, "CI must have npm"
    subprocess.run(
        [NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
        cwd=NODE_DIR,
        check=True,
        timeout=300,
    )
    return NODE_DIR / "node_modules"


def run_node(stack: DevStack, script: str, *args: str) -> Any:
    """Run ``node <script> <args>`` against ``stack``; the JSON its last stdout line prints."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, script, *args],
        cwd=NODE_DIR,
        env={**os.environ, "RELAY_URL": stack.url, "RELAY_TOKEN": stack.token},
        capture_output=True,
        text=True,
        timeout=60,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert done.returncode == 0, (result, done.stderr[-2000:])
    return result
