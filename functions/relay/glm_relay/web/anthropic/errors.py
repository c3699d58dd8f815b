"""Errors in Anthropic's shape, so an Anthropic SDK (and Claude Code) raises the matching error.

``{"type": "error", "error": {"type": ..., "message": ...}}``, the type chosen by the status; the
message starts with the relay's own code (``quota_exceeded: ...``), the part a program can
match. Streams end in the same object as an ``error`` event. Headers are ``/v1``'s:
``Retry-After`` where a delay is known, ``x-should-retry`` (which Anthropic's SDKs read too).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glm_relay.sse import dumps_data, encode_event
from glm_relay.web.openai_errors import CLIENT_RETRYABLE, json_response

if TYPE_CHECKING:
    from glm_relay.errors import RelayError
    from glm_relay.runtime import StreamingResponse
    from glm_relay.web.request import HttpRequest

# Anthropic's error type for each status the relay answers with.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def from_anthropic_sdk(request: HttpRequest) -> bool:
    """Whether the caller is an Anthropic SDK (it sends ``anthropic-version``): on the routes
    both APIs share (``/v1/models``), it reads errors and models in Anthropic's shape."""
    return "anthropic-version" in request.headers


def error_type(status: int) -> str:
    """Anthropic's ``error.type`` for an HTTP status (``api_error`` for other 5xx)."""
    return ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(error: RelayError) -> dict[str, Any]:
    """The whole error object, as a body or as an ``error`` event's data; the relay's extras
    (``param``, ``resets_at``, ``last_event_id``...) ride beside Anthropic's two fields."""
    message = f"{error.code}: {error.message}"
    kind = error_type(error.status)
    return {"type": "error", "error": {**error.extra, "type": kind, "message": message}}


def anthropic_error(request: HttpRequest | None, error: RelayError) -> StreamingResponse:
    """The ``ErrorFormat`` of ``/v1/messages``."""
    response = json_response(error.status, error_body(error))
    response.headers.update(error.response_headers())
    retry = error.retryable and error.code in CLIENT_RETRYABLE
    response.headers["x-should-retry"] = "true" if retry else "false"
    return response


def error_event(error: RelayError) -> bytes:
    """The terminal ``error`` event of a stream that failed after it began."""
    return encode_event("error", dumps_data(error_body(error)))
