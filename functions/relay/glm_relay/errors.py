"""The relay's error catalogue: one machine-readable code per way a request can fail.

Every failure a caller can see is a ``RelayError``: an HTTP status (used when the failure is
known before streaming starts), a stable ``code`` (documented in the README), a message that is
safe to show (never a key, a token or an upstream secret), and whether retrying may help.
Its text is always encodable: a message or extra that quotes a caller's key or value holding an
unpaired surrogate (JSON carries one, UTF-8 cannot) quotes its escape instead. An error is built
whole: its headers, retry delay and machine-readable extras are given when it is raised, never
patched on afterwards.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """A catalogued code; its HTTP status and retryability come from ``CATALOGUE``."""

    # The request itself
    NOT_FOUND = "not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    BODY_TOO_LARGE = "body_too_large"
    INVALID_ENCODING = "invalid_encoding"
    INVALID_JSON = "invalid_json"
    INVALID_BODY = "invalid_body"
    MISSING_PROMPT = "missing_prompt"
    INVALID_MESSAGES = "invalid_messages"
    TOO_MANY_MESSAGES = "too_many_messages"
    PROMPT_TOO_LONG = "prompt_too_long"
    INVALID_PARAMETER = "invalid_parameter"
    UNKNOWN_PARAMETER = "unknown_parameter"
    UNSUPPORTED_PARAMETER = "unsupported_parameter"
    UNSUPPORTED_CONTENT = "unsupported_content"
    MEDIA_TOO_LARGE = "media_too_large"
    WEB_SEARCH_DISABLED = "web_search_disabled"
    MODEL_NOT_ALLOWED = "model_not_allowed"
    MODEL_NOT_FOUND = "model_not_found"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    ORIGIN_NOT_ALLOWED = "origin_not_allowed"
    QUOTA_EXCEEDED = "quota_exceeded"
    BUDGET_EXCEEDED = "budget_exceeded"
    CONVERSATION_NOT_FOUND = "conversation_not_found"
    CONVERSATIONS_DISABLED = "conversations_disabled"
    STATE_UNAVAILABLE = "state_unavailable"
    # The upstream
    RATE_LIMITED = "rate_limited"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    CONTEXT_LENGTH_EXCEEDED = "context_length_exceeded"
    CONTENT_FILTERED = "content_filtered"
    UPSTREAM_REJECTED_REQUEST = "upstream_rejected_request"
    UPSTREAM_AUTH_FAILED = "upstream_auth_failed"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    UPSTREAM_ERROR = "upstream_error"
    UPSTREAM_STALLED = "upstream_stalled"
    UPSTREAM_DISCONNECTED = "upstream_disconnected"
    UPSTREAM_NETWORK_ERROR = "upstream_network_error"
    UPSTREAM_PROTOCOL_ERROR = "upstream_protocol_error"
    TOOL_ARGUMENTS_INVALID = "tool_arguments_invalid"
    # The relay
    DEADLINE_EXCEEDED = "deadline_exceeded"
    ANSWER_STOPPED = "answer_stopped"
    CONFIGURATION_ERROR = "configuration_error"
    SECRET_UNAVAILABLE = "secret_unavailable"
    IDENTITY_PROVIDER_UNAVAILABLE = "identity_provider_unavailable"
    INTERNAL_ERROR = "internal_error"

    @property
    def status(self) -> int:
        """The HTTP status of a failure with this code, known before streaming."""
        return CATALOGUE[self][0]

    @property
    def retryable(self) -> bool:
        """Whether the same request may succeed later."""
        return CATALOGUE[self][1]


C = ErrorCode
# code: (HTTP status, retryable)
CATALOGUE: dict[ErrorCode, tuple[int, bool]] = {
    C.NOT_FOUND: (404, False),
    C.METHOD_NOT_ALLOWED: (405, False),
    C.UNSUPPORTED_MEDIA_TYPE: (415, False),
    C.BODY_TOO_LARGE: (413, False),
    C.INVALID_ENCODING: (400, False),
    C.INVALID_JSON: (400, False),
    C.INVALID_BODY: (400, False),
    C.MISSING_PROMPT: (400, False),
    C.INVALID_MESSAGES: (400, False),
    C.TOO_MANY_MESSAGES: (400, False),
    C.PROMPT_TOO_LONG: (413, False),
    C.INVALID_PARAMETER: (400, False),
    C.UNKNOWN_PARAMETER: (400, False),
    C.UNSUPPORTED_PARAMETER: (400, False),
    C.UNSUPPORTED_CONTENT: (400, False),
    C.MEDIA_TOO_LARGE: (413, False),
    C.WEB_SEARCH_DISABLED: (400, False),
    C.MODEL_NOT_ALLOWED: (400, False),
    C.MODEL_NOT_FOUND: (404, False),
    C.UNAUTHORIZED: (401, False),
    C.FORBIDDEN: (403, False),
    C.ORIGIN_NOT_ALLOWED: (403, False),
    C.QUOTA_EXCEEDED: (429, True),
    C.BUDGET_EXCEEDED: (429, True),
    C.CONVERSATION_NOT_FOUND: (404, False),
    C.CONVERSATIONS_DISABLED: (400, False),
    C.STATE_UNAVAILABLE: (503, True),
    C.RATE_LIMITED: (429, True),
    C.INSUFFICIENT_BALANCE: (503, False),
    C.CONTEXT_LENGTH_EXCEEDED: (400, False),
    C.CONTENT_FILTERED: (400, False),
    C.UPSTREAM_REJECTED_REQUEST: (502, False),
    C.UPSTREAM_AUTH_FAILED: (502, False),
    C.UPSTREAM_UNAVAILABLE: (503, True),
    C.UPSTREAM_ERROR: (502, True),
    C.UPSTREAM_STALLED: (504, True),
    C.UPSTREAM_DISCONNECTED: (502, True),
    C.UPSTREAM_NETWORK_ERROR: (502, True),
    C.UPSTREAM_PROTOCOL_ERROR: (502, True),
    C.TOOL_ARGUMENTS_INVALID: (502, True),
    C.DEADLINE_EXCEEDED: (504, True),
    C.ANSWER_STOPPED: (503, False),
    C.CONFIGURATION_ERROR: (500, False),
    C.SECRET_UNAVAILABLE: (503, True),
    C.IDENTITY_PROVIDER_UNAVAILABLE: (503, True),
    C.INTERNAL_ERROR: (500, True),
}
del C


def encodable(value: Any) -> Any:
    """``value`` with every string in it made encodable as UTF-8: an unpaired surrogate becomes
    its escape (``"\\udc00"``), so the caller still sees what it sent. Lists, tuples and dicts are
    walked; anything else is returned as it is.

    Example:
        encodable("unknown field: \udc00")  # 'unknown field: \\udc00'
    """
    if isinstance(value, str):
        if value.isascii():
            return value
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(encodable(v) for v in value)
    return value


class RelayError(Exception):
    """A failure with a status, a stable code and a caller-safe message.

    Example:
        raise RelayError(ErrorCode.MODEL_NOT_ALLOWED, "model 'x' is not allowed here")
        raise RelayError(ErrorCode.RATE_LIMITED, "slow down", retry_after=2.0)
    """

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        extra: Mapping[str, Any] | None = None,
    ) -> None:
        message = encodable(message)
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = code.status
        self.retryable = code.retryable
        self.retry_after = retry_after
        self.headers: Mapping[str, str] = headers or {}
        # Machine-readable details, e.g. when a quota resets.
        self.extra: Mapping[str, Any] = encodable(dict(extra)) if extra else {}

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
        return f"RelayError({self.code.value!r}, {self.message!r}, {self.status})"
