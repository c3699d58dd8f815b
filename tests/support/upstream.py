"""What reached the fake Zhipu, read from its own request log: the upstream's view of a test."""

from __future__ import annotations

from typing import Any

import httpx

from devtools.stack import DevStack

# The web search tool the relay sends for ``web_search=true`` with no WEB_SEARCH_OPTIONS.
DEFAULT_SEARCH_TOOL = {
    "type": "web_search",
    "web_search": {
        "enable": True,
        "search_engine": "search_std",
        "search_result": True,
        "count": 5,
    },
}


def upstream_bodies(stack: DevStack, client: httpx.Client) -> list[dict[str, Any]]:
    """The request bodies the fake upstream received since its log was last emptied."""
    assert stack.upstream is not None
    records = client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]
    return [record["body"] for record in records]
