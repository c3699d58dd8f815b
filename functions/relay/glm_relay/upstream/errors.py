"""Zhipu's failures translated into the relay's catalogue, in one place.

Zhipu's own message is not passed on: it can quote the request, and our catalogue's wording is
stable. Its code is, so an operator can look it up.
"""

from __future__ import annotations

from typing import Any

from glm_relay.errors import ErrorCode, RelayError

AUTH_CODES = frozenset({"1000", "1001", "1002", "1003", "1004"})
RATE_LIMIT_CODES = frozenset({"1302", "1303", "1305"})
# Zhipu's words when a tool-call turn comes back without the reasoning that preceded it.
CALL_REASONING_MISSING = "reasoning_content is missing in assistant tool call message"
# Finish reasons that mean the answer was cut short by the upstream: reported as errors.
FAILED_FINISH_REASONS = {
    "sensitive": (
        ErrorCode.CONTENT_FILTERED,
        "the answer was stopped by the upstream content filter",
    ),
    "network_error": (ErrorCode.UPSTREAM_NETWORK_ERROR, "the upstream failed while generating"),
}


def error_from_body(
    body: dict[str, Any], *, status: int, retry_after: float | None = None
) -> RelayError:
    """Map Zhipu's ``{"error": {"code", "message"}}`` (and the HTTP status) onto our codes."""
    error = body.get("error") if isinstance(body.get("error"), dict) else {}
    code = str(error.get("code", "")) if error else ""
    suffix = f" (upstream code {code})" if code.isalnum() and len(code) <= 8 else ""

    def mapped(relay_code: ErrorCode, message: str) -> RelayError:
        return RelayError(relay_code, message, retry_after=retry_after)

    if status == 401 or code in AUTH_CODES:
        return mapped(
            ErrorCode.UPSTREAM_AUTH_FAILED, "the upstream rejected the relay's key" + suffix
        )
    if code == "1113":
        return mapped(ErrorCode.INSUFFICIENT_BALANCE, "the upstream account is out of balance")
    if status == 429 or code in RATE_LIMIT_CODES:
        return mapped(ErrorCode.RATE_LIMITED, "the upstream is rate limiting requests" + suffix)
    if code == "1261":
        return mapped(
            ErrorCode.CONTEXT_LENGTH_EXCEEDED, "the prompt is too long for the model" + suffix
        )
    if code == "1301":
        return mapped(ErrorCode.CONTENT_FILTERED, "the upstream content filter refused the prompt")
    if status == 503:
        return mapped(ErrorCode.UPSTREAM_UNAVAILABLE, "the upstream is unavailable" + suffix)
    if status == 400 and CALL_REASONING_MISSING in str((error or {}).get("message", "")):
        # GLM-5.1 and later with thinking on: the caller's history is what must change.
        return mapped(
            ErrorCode.INVALID_MESSAGES,
            "send each assistant tool-call turn back with its reasoning_content: the model "
            "(GLM-5.1 and later, thinking on) refuses it without" + suffix,
        )
    if 400 <= status < 500:
        return mapped(
            ErrorCode.UPSTREAM_REJECTED_REQUEST, "the upstream rejected the request" + suffix
        )
    return mapped(ErrorCode.UPSTREAM_ERROR, "the upstream failed" + suffix)


def failure_of_finish(finish_reason: str) -> RelayError | None:
    """The error a finish reason stands for, or ``None`` for an answer that ended normally."""
    failed = FAILED_FINISH_REASONS.get(finish_reason)
    return RelayError(*failed) if failed else None


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header in seconds (dates are not used by Zhipu)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def transport_error(exc: Exception, *, connecting: bool) -> RelayError:
    """An httpx transport failure as one of our codes; ``connecting``: before any response."""
    import httpx

    if isinstance(exc, httpx.ConnectTimeout):
        return RelayError(ErrorCode.UPSTREAM_UNAVAILABLE, "connecting to the upstream timed out")
    if isinstance(exc, httpx.ConnectError):
        return RelayError(ErrorCode.UPSTREAM_UNAVAILABLE, "cannot connect to the upstream")
    if isinstance(exc, httpx.PoolTimeout):
        return RelayError(ErrorCode.UPSTREAM_UNAVAILABLE, "no upstream connection was free")
    if isinstance(exc, httpx.ReadTimeout | httpx.WriteTimeout):
        message = (
            "the upstream did not answer in time" if connecting else "the upstream stopped sending"
        )
        return RelayError(ErrorCode.UPSTREAM_STALLED, message)
    message = (
        "the upstream closed the connection"
        if connecting
        else "the upstream connection broke mid-answer"
    )
    return RelayError(ErrorCode.UPSTREAM_DISCONNECTED, message)
