"""The relay's error catalogue: one machine-readable code per way a request can fail.

Every failure a caller can see is a ``RelayError``: an HTTP status (used when the failure is
known before streaming starts), a stable ``code`` (documented in the README), a message that is
safe to show (never a key, a token or an upstream secret), and whether retrying may help.
"""

from __future__ import annotations

import json
from typing import Any


class RelayError(Exception):
    """A failure with a status, a stable code and a caller-safe message.

    Example:
        raise RelayError.of("model_not_allowed", "model 'x' is not allowed here")
    """

    def __init__(self, code: str, message: str, status: int, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.retryable = retryable
        self.retry_after: float | None = None
        self.headers: dict[str, str] = {}
        self.extra: dict[str, Any] = {}  # machine-readable details, e.g. when a quota resets

    @classmethod
    def of(cls, code: str, message: str) -> RelayError:
        """Build the error for a catalogued ``code`` (status and retryability come from it)."""
        status, retryable = CATALOGUE[code]
        return cls(code, message, status, retryable=retryable)

    def response_headers(self) -> dict[str, str]:
        """Headers that go with this error as an HTTP answer (``Allow``, ``Retry-After``...)."""
        headers = dict(self.headers)
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(self.retry_after)))
        return headers

    def to_json(self) -> bytes:
        """The JSON error body for non-streaming callers."""
        body = {"code": self.code, "message": self.message, **self.extra}
        return json.dumps({"error": body}, ensure_ascii=False).encode()

    def event_data(self) -> dict[str, Any]:
        """The data of the terminal ``error`` event."""
        return {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            **self.extra,
        }

    def __repr__(self) -> str:
        return f"RelayError({self.code!r}, {self.message!r}, {self.status})"


# code: (HTTP status, retryable)
CATALOGUE: dict[str, tuple[int, bool]] = {
    # The request itself
    "not_found": (404, False),
    "method_not_allowed": (405, False),
    "unsupported_media_type": (415, False),
    "body_too_large": (413, False),
    "invalid_encoding": (400, False),
    "invalid_json": (400, False),
    "invalid_body": (400, False),
    "missing_prompt": (400, False),
    "invalid_messages": (400, False),
    "too_many_messages": (400, False),
    "prompt_too_long": (413, False),
    "invalid_parameter": (400, False),
    "unknown_parameter": (400, False),
    "model_not_allowed": (400, False),
    "unauthorized": (401, False),
    "forbidden": (403, False),
    "origin_not_allowed": (403, False),
    "quota_exceeded": (429, True),
    "conversation_not_found": (404, False),
    "conversations_disabled": (400, False),
    "state_unavailable": (503, True),
    # The upstream
    "rate_limited": (429, True),
    "insufficient_balance": (503, False),
    "context_length_exceeded": (400, False),
    "content_filtered": (400, False),
    "upstream_rejected_request": (502, False),
    "upstream_auth_failed": (502, False),
    "upstream_unavailable": (503, True),
    "upstream_error": (502, True),
    "upstream_stalled": (504, True),
    "upstream_disconnected": (502, True),
    "upstream_network_error": (502, True),
    "upstream_protocol_error": (502, True),
    # The relay
    "deadline_exceeded": (504, True),
    "configuration_error": (500, False),
    "secret_unavailable": (503, True),
    "internal_error": (500, True),
}
