"""The small fixed answers: the demo page and a stored conversation."""

from __future__ import annotations

import json
from importlib import resources
from typing import TYPE_CHECKING

from glm_relay.chat.session import ANONYMOUS
from glm_relay.runtime import StreamingResponse, fixed_response
from glm_relay.web.headers import JSON_HEADERS, PAGE_HEADERS

if TYPE_CHECKING:
    from glm_relay.state import UserState
    from glm_relay.web.routing import Exchange


class PageEndpoint:
    """``GET /`` and ``HEAD /``: the demo page, read from the package once."""

    def __init__(self) -> None:
        self._page: bytes | None = None

    async def get(self, exchange: Exchange) -> StreamingResponse:
        if self._page is None:
            self._page = resources.files("glm_relay").joinpath("static/index.html").read_bytes()
        return fixed_response(200, dict(PAGE_HEADERS), self._page)

    async def head(self, exchange: Exchange) -> StreamingResponse:
        return fixed_response(200, dict(PAGE_HEADERS))


class ConversationEndpoint:
    """``GET /conversations/{id}``: a stored conversation, for its owner only."""

    def __init__(self, state: UserState) -> None:
        self._state = state

    async def get(self, exchange: Exchange) -> StreamingResponse:
        owner = exchange.claims.sub if exchange.claims else ANONYMOUS
        history = await self._state.history(exchange.params["id"], owner)
        payload = json.dumps(history, ensure_ascii=False).encode()
        return fixed_response(200, dict(JSON_HEADERS), payload)
