"""The incoming HTTP request, read from a function-URL event (payload format 2.0)."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from glm_relay.errors import ErrorCode, RelayError


@dataclass(frozen=True, slots=True)
class HttpRequest:
    """What the handler needs of an event; header names are lower-case."""

    method: str
    path: str
    raw_query: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    request_id: str

    @classmethod
    def from_event(cls, event: dict[str, Any], request_id: str) -> HttpRequest:
        """Read a payload-2.0 event; a body that cannot be decoded is a 400."""
        http = (event.get("requestContext") or {}).get("http") or {}
        raw_query = event.get("rawQueryString") or ""
        # parse_qsl keeps the last value of a repeated name, as the function URL does not.
        try:
            query = dict(parse_qsl(raw_query, keep_blank_values=True, errors="strict"))
        except UnicodeDecodeError:
            raise RelayError(
                ErrorCode.INVALID_ENCODING, "the query string is not valid UTF-8"
            ) from None
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        body = event.get("body") or ""
        if event.get("isBase64Encoded"):
            try:
                data = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                raise RelayError(ErrorCode.INVALID_BODY, "the body is not valid base64") from None
        else:
            data = body.encode("utf-8", errors="surrogatepass")
        return cls(
            method=str(http.get("method") or "GET").upper(),
            path=str(event.get("rawPath") or http.get("path") or "/"),
            raw_query=raw_query,
            query=query,
            headers=headers,
            body=data,
            request_id=request_id,
        )

    @property
    def wants_event_stream(self) -> bool:
        """An EventSource (it always sends ``Accept: text/event-stream``): errors go in-band."""
        return "text/event-stream" in self.headers.get("accept", "")

    def json_object(self, max_bytes: int) -> dict[str, Any]:
        """The body as a JSON object, with the size, type and encoding checks every POST needs."""
        if len(self.body) > max_bytes:
            raise RelayError(ErrorCode.BODY_TOO_LARGE, f"the body is over {max_bytes} bytes")
        content_type = self.headers.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            raise RelayError(
                ErrorCode.UNSUPPORTED_MEDIA_TYPE, "send the body as Content-Type: application/json"
            )
        try:
            text = self.body.decode("utf-8")
        except UnicodeDecodeError:
            raise RelayError(ErrorCode.INVALID_ENCODING, "the body is not valid UTF-8") from None
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError):
            raise RelayError(
                ErrorCode.INVALID_JSON, "the body is not valid JSON (or nested too deeply)"
            ) from None
        if not isinstance(payload, dict):
            raise RelayError(ErrorCode.INVALID_BODY, "the body must be a JSON object")
        return payload
