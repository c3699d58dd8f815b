"""Where the Node client tests live and whether Node is here (CI always installs it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NODE_DIR = Path(__file__).parent.parent / "clients" / "node"
NODE, NPM = shutil.which("node"), shutil.which("npm")

needs_node = pytest.mark.skipif(
    (NODE is None or NPM is None) and not os.environ.get("CI"),
    reason="node and npm are not installed here (CI installs them: apt-get install nodejs npm)",
)
