"""The small fixed answers: the demo page, a stored conversation, the caller's usage."""

from __future__ import annotations

import json
import re
from importlib import resources
from typing import TYPE_CHECKING

from glm_relay.runtime import StreamingResponse, fixed_response
from glm_relay.web.headers import JSON_HEADERS, PAGE_HEADERS

if TYPE_CHECKING:
    from glm_relay.state import UserState
    from glm_relay.web.routing import Exchange


BASE_MARK = b'<meta name="glm-relay-base" content="">'
# A base path is the deployment's (an API Gateway stage or a custom domain mapping), yet it is
# written into HTML: only these characters may pass.
SAFE_BASE = re.compile(r"(/[A-Za-z0-9._~-]+)*")


class PageEndpoint:
    """``GET /`` and ``HEAD /``: the demo page, read from the package once.

    Behind an API Gateway stage the page lives under a base path (``/api/``); it is written into
    the page so the page's requests go to ``/api/chat``, not ``/chat``.
    """

    def __init__(self) -> None:
        self._page: bytes | None = None

    async def get(self, exchange: Exchange) -> StreamingResponse:
        if self._page is None:
            self._page = resources.files("glm_relay").joinpath("static/index.html").read_bytes()
        page = self._page
        base = exchange.request.base_path
        if base and SAFE_BASE.fullmatch(base):
            page = page.replace(BASE_MARK, BASE_MARK.replace(b'""', f'"{base}"'.encode()), 1)
        return fixed_response(200, dict(PAGE_HEADERS), page)

    async def head(self, exchange: Exchange) -> StreamingResponse:
        return fixed_response(200, dict(PAGE_HEADERS))


class ConversationEndpoint:
    """``GET /conversations/{id}``: a stored conversation, for its owner only."""

    def __init__(self, state: UserState) -> None:
        self._state = state

    async def get(self, exchange: Exchange) -> StreamingResponse:
        history = await self._state.history(exchange.params["id"], exchange.owner)
        payload = json.dumps(history, ensure_ascii=False).encode()
        return fixed_response(200, dict(JSON_HEADERS), payload)


class UsageEndpoint:
    """``GET /usage``: the caller's own usage today and this month, and budgets left."""

    def __init__(self, state: UserState) -> None:
        self._state = state

    async def get(self, exchange: Exchange) -> StreamingResponse:
        usage = await self._state.usage(exchange.claims)
        payload = json.dumps(usage, ensure_ascii=False).encode()
        return fixed_response(200, dict(JSON_HEADERS), payload)
