"""The Lambda entry point named by ``_HANDLER``: one ``WebApp`` per container, built lazily."""

from __future__ import annotations

from typing import Any

from glm_relay.config import Settings
from glm_relay.runtime import InvocationContext, StreamingResponse
from glm_relay.web.app import WebApp

_app: WebApp | None = None


async def handle(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Serve one function-URL event with the container's app (settings from the environment)."""
    global _app
    if _app is None:
        _app = WebApp(Settings.from_env())
    return await _app.handle(event, context)
