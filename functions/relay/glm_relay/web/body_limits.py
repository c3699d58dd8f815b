"""How large a POST body may be: ``MAX_BODY_BYTES``, or up to ``MAX_VISION_BODY_BYTES`` when it
carries images, video or files for a vision model.

The larger limit needs the body read before it can be applied (what is in it decides), so a
body is read up to the larger limit and the smaller one is applied once its messages are known:
both before any upstream call, both ``body_too_large`` (413) with the limit that applied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_relay.errors import ErrorCode, RelayError

if TYPE_CHECKING:
    from glm_relay.config import Settings
    from glm_relay.web.request import HttpRequest


def read_payload(request: HttpRequest, settings: Settings) -> dict[str, Any]:
    """The JSON body, refused beyond the largest limit any request may have."""
    largest = max(settings.max_body_bytes, settings.max_vision_body_bytes)
    if len(request.body) > largest:
        raise _too_large(request, settings)
    return request.json_object(largest)


def check_body_size(
    request: HttpRequest, settings: Settings, messages: list[dict[str, Any]]
) -> None:
    """Refuse a body over ``MAX_BODY_BYTES`` unless its messages carry media (which only vision
    models accept: ``chat/messages.py`` refused them for other models already)."""
    if len(request.body) <= settings.max_body_bytes:
        return
    if not any(isinstance(m.get("content"), list) for m in messages):
        raise _too_large(request, settings)


def _too_large(request: HttpRequest, settings: Settings) -> RelayError:
    return RelayError(
        ErrorCode.BODY_TOO_LARGE,
        f"the body is {len(request.body)} bytes: over {settings.max_body_bytes} bytes "
        f"(MAX_BODY_BYTES), or {settings.max_vision_body_bytes} bytes (MAX_VISION_BODY_BYTES) "
        "with images, video or files for a vision model",
        extra={
            "limit_bytes": settings.max_body_bytes,
            "vision_limit_bytes": settings.max_vision_body_bytes,
        },
    )
