"""The client matrix: real client libraries against the local function URL and the fake Zhipu."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.node import install


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``npm ci`` from the committed lock file, once per session."""
    return install()
