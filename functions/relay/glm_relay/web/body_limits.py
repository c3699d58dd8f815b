"""How large a POST body may be: ``MAX_BODY_BYTES``, or up to ``MAX_VISION_BODY_BYTES`` when it
carries images, video or files for a vision model and that limit is the larger one.

By default both are the function URL's own ceiling (6,000,000 bytes), so one limit applies to
every body; behind the REST API (10 MB payloads) an operator may let media bodies grow larger.
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


def vision_limit(settings: Settings) -> int:
    """The body limit of a request with media: never below ``MAX_BODY_BYTES`` (0: the same)."""
    return max(settings.max_body_bytes, settings.max_vision_body_bytes)


def read_payload(request: HttpRequest, settings: Settings) -> dict[str, Any]:
    """The JSON body, refused beyond the largest limit any request may have."""
    largest = vision_limit(settings)
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
    limit, media_limit = settings.max_body_bytes, vision_limit(settings)
    media = (
        f", or {media_limit} bytes (MAX_VISION_BODY_BYTES) with images, video or files for a "
        "vision model"
        if media_limit > limit
        else ""
    )
    return RelayError(
        ErrorCode.BODY_TOO_LARGE,
        f"the body is {len(request.body)} bytes: over {limit} bytes (MAX_BODY_BYTES){media}",
        extra={"limit_bytes": limit, "vision_limit_bytes": media_limit},
    )
