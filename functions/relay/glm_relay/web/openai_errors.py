"""Errors in OpenAI's shape, so an OpenAI SDK raises the matching exception.

Kept apart from the rest of ``/v1`` so the front door can answer a ``/v1`` error without loading
the OpenAI front end, which is imported on the first ``/v1`` request.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from glm_relay.errors import ErrorCode
from glm_relay.runtime import StreamingResponse, fixed_response
from glm_relay.web.headers import JSON_HEADERS

if TYPE_CHECKING:
    from glm_relay.errors import RelayError
    from glm_relay.web.request import HttpRequest

# Failures the relay did not retry itself (nothing reached the upstream): a client may.
CLIENT_RETRYABLE = frozenset({ErrorCode.STATE_UNAVAILABLE, ErrorCode.SECRET_UNAVAILABLE})
_ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}


def error_object(error: RelayError) -> dict[str, Any]:
    """OpenAI's ``error`` object; ``code`` is the relay's catalogued code."""
    status = error.status
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {
        "message": error.message,
        "type": kind,
        "param": None,
        "code": error.code,
        **error.extra,
    }


def openai_error(request: HttpRequest | None, error: RelayError) -> StreamingResponse:
    """The ``ErrorFormat`` of ``/v1``."""
    response = json_response(error.status, {"error": error_object(error)})
    response.headers.update(error.response_headers())
    # The SDK reads this instead of guessing from the status. The relay has already retried
    # the upstream where that helps; only failures before any upstream call are left to it.
    retry = error.retryable and error.code in CLIENT_RETRYABLE
    response.headers["x-should-retry"] = "true" if retry else "false"
    return response


def json_response(status: int, data: dict[str, Any]) -> StreamingResponse:
    """A whole JSON answer."""
    payload = json.dumps(data, ensure_ascii=False).encode()
    return fixed_response(status, dict(JSON_HEADERS), payload)
