"""CORS for the API Gateway front door, where the function must answer it itself.

A function URL answers CORS from its own configuration (``template.yaml``), so nothing here runs
for its events: a header sent by both would reach the browser twice. A REST API that proxies every
method to the function has no such configuration, so for its events the function answers
preflights and adds the headers a page needs to read an answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from glm_relay.runtime import StreamingResponse, fixed_response

if TYPE_CHECKING:
    from glm_relay.config import Settings
    from glm_relay.web.request import HttpRequest

ALLOW_METHODS = "GET, POST"
# x-api-key: the usage plan's key (ApiUsagePlan), which only this front door has.
ALLOW_HEADERS = "authorization, content-type, last-event-id, x-api-key"
# What a page reads of an answer: the request id to quote, and how long to wait before a retry.
EXPOSE_HEADERS = "x-request-id, retry-after, x-should-retry, www-authenticate"
MAX_AGE_SECONDS = "600"


def allowed_origin(request: HttpRequest, settings: Settings) -> str | None:
    """The ``Access-Control-Allow-Origin`` value for this request, or ``None``."""
    origin = request.headers.get("origin")
    if origin is None:
        return None
    if "*" in settings.allowed_origins:
        return "*"
    return origin if origin in settings.allowed_origins else None


def is_preflight(request: HttpRequest) -> bool:
    """An ``OPTIONS`` request a browser sends before a cross-origin call."""
    return request.method == "OPTIONS" and "access-control-request-method" in request.headers


def preflight(request: HttpRequest, settings: Settings) -> StreamingResponse:
    """204 with what may be sent, or 403 for an origin that may not call."""
    origin = allowed_origin(request, settings)
    if origin is None:
        return fixed_response(403, {"Vary": "Origin"})
    return fixed_response(
        204,
        {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": ALLOW_METHODS,
            "Access-Control-Allow-Headers": ALLOW_HEADERS,
            "Access-Control-Max-Age": MAX_AGE_SECONDS,
            "Vary": "Origin",
        },
    )


def add_cors_headers(response: StreamingResponse, request: HttpRequest, settings: Settings) -> None:
    """The headers every answer to an allowed cross-origin caller carries."""
    origin = allowed_origin(request, settings)
    response.headers["Vary"] = "Origin"
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
