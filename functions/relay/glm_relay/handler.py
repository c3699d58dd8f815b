"""The Lambda entry point named by ``_HANDLER``: one ``RelayApp`` per container, built lazily."""

from __future__ import annotations

from typing import Any

from glm_relay.app import RelayApp
from glm_relay.config import Settings
from glm_relay.context import InvocationContext
from glm_relay.response import StreamingResponse

_app: RelayApp | None = None


async def handle(event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
    """Serve one function-URL event with the container's app (settings from the environment)."""
    global _app
    if _app is None:
        _app = RelayApp(Settings.from_env())
    return await _app.handle(event, context)
