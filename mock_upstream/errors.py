"""Zhipu's error codes and body shape: `{"error": {"code": "<string>", "message": "..."}}`
(the code is sometimes a number on the real service; the `numeric_code` shape sends that)."""

from __future__ import annotations

import json
from typing import Any

# Business codes (HTTP status in parentheses), sent as strings unless `numeric_code` is asked.
NO_AUTH_HEADER = "1001"  # (401) no Authorization header
INVALID_TOKEN = "1002"  # (401) bad signature, wrong key id, malformed token
EXPIRED_TOKEN = "1003"  # (401) token past its `exp` (milliseconds)
BALANCE_EXHAUSTED = "1113"  # (429) account in arrears
BAD_REQUEST = "1210"  # (400) not a JSON object; a value out of range or not allowed here
UNKNOWN_MODEL = "1211"  # (400) model not in the accepted list
MISSING_FIELD = "1213"  # (400) a required field is missing
BAD_PARAMETER = "1214"  # (400) a field has the wrong type or an invalid value
NETWORK_ERROR = "1234"  # internal failure; what an error frame mid-stream carries
PROMPT_TOO_LONG = "1261"  # (400) prompt over the limit
SENSITIVE_INPUT = "1301"  # (400) moderation blocked the input
TOO_MUCH_CONCURRENCY = "1302"  # (429) rate limited
INTERNAL_ERROR = "500"  # (500)
UNAVAILABLE = "503"  # (503)

JSON_CONTENT_TYPE = "application/json; charset=UTF-8"


class ZhipuError(Exception):
    """An HTTP error answer, raised anywhere before the response starts."""

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})

    def body(self, numeric: bool = False) -> bytes:
        return error_body(self.code, self.message, numeric)


def error_object(code: str, message: str, numeric: bool = False) -> dict[str, dict[str, Any]]:
    """`numeric` sends the code as a JSON number, as some real answers do (`"code": 1302`)."""
    return {"error": {"code": int(code) if numeric else code, "message": message}}


def error_body(code: str, message: str, numeric: bool = False) -> bytes:
    body = json.dumps(
        error_object(code, message, numeric), ensure_ascii=False, separators=(",", ":")
    )
    return body.encode("utf-8")
