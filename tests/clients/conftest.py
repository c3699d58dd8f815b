"""The client matrix: real client libraries against the local function URL and the fake Zhipu."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from devtools.stack import DevStack


@pytest.fixture
def sent(stack: DevStack, client: httpx.Client, upstream_log: None) -> Any:
    """``sent()``: the bodies the fake upstream received since the test began."""
    assert stack.upstream is not None
    origin = stack.upstream.origin

    def bodies() -> list[dict[str, Any]]:
        records = client.get(f"{origin}/_mock/requests").json()["requests"]
        return [record["body"] for record in records]

    return bodies
