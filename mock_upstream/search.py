"""The `web_search` tool: fixed, predictable search results for a query.

A body with an enabled `{"type": "web_search", ...}` tool gets `count` results (10 when not
given) for `search_query`, else for the prompt text. The list rides at the top level of one
stream chunk (`#search_at=N` picks the data frame, the first by default) or of the non-stream
body; the answer cites the first `CITED` results as ` [ref_1]`. `search_result: false` keeps the
list out of the response (the citations stay).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from mock_upstream import tools

DEFAULT_COUNT = 10
CITED = 3
_QUERY_CHARS = 40


def result(index: int, query: str) -> dict[str, Any]:
    """Result `index` (from 1) for `query`; every field is a function of the two."""
    short = query[:_QUERY_CHARS]
    month, day = 1 + (index - 1) // 28 % 12, 1 + (index - 1) % 28
    return {
        "title": f"Result {index} for {short}",
        "link": f"https://search.example/{index}?q={quote(short)}",
        "content": f"Snippet {index} about {short}.",
        "media": "Search Example",
        "icon": "https://search.example/favicon.ico",
        "refer": f"ref_{index}",
        "publish_date": f"2026-{month:02d}-{day:02d}",
    }


def results(body: dict[str, Any], text: str) -> tuple[dict[str, Any], ...] | None:
    """The results the body's web search finds, or None when it has no enabled search tool."""
    config = tools.web_search_config(body)
    if config is None:
        return None
    count = config.get("count")
    count = count if isinstance(count, int) else DEFAULT_COUNT
    query = config.get("search_query")
    query = query if isinstance(query, str) and query else text
    return tuple(result(i, query) for i in range(1, count + 1))


def shown(body: dict[str, Any]) -> bool:
    """Whether the results are sent to the client (not when `search_result` is false)."""
    config = tools.web_search_config(body)
    return config is not None and config.get("search_result") is not False
