"""The client matrix: real client libraries against the local function URL and the fake Zhipu."""

from __future__ import annotations
