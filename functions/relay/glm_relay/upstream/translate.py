"""The one translation from the relay's chat request to Zhipu's ``chat/completions`` body."""

from __future__ import annotations

from typing import Any

from glm_relay.chat.request import ChatRequest


def zhipu_body(chat: ChatRequest, request_id: str) -> dict[str, Any]:
    """The request body (``stream`` is added by the client); ``request_id`` ties Zhipu's logs
    to ours."""
    body: dict[str, Any] = {
        "model": chat.model,
        "messages": chat.messages,
        "max_tokens": chat.max_tokens,
        "request_id": request_id,
    }
    if chat.temperature is not None:
        body["temperature"] = chat.temperature
    if chat.top_p is not None:
        body["top_p"] = chat.top_p
    return body
