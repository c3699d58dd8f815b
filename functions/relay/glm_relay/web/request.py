"""The incoming HTTP request, read from either front door's event.

A function URL sends payload format 2.0 (``rawPath``, ``rawQueryString``, ``requestContext.http``);
an API Gateway REST API sends the proxy format 1.0 (``httpMethod``, ``path``, decoded query maps,
``multiValueHeaders``). Both become the same ``HttpRequest``; ``via_rest_api``, ``base_path``
(the stage prefix, ``/api``) and ``authorizer_claims`` (what an API Gateway authorizer said of the
caller) are all the rest of the app needs to know about the difference.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

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
    via_rest_api: bool = False
    base_path: str = ""
    # requestContext.authorizer.claims of a REST event (a Cognito user-pool authorizer); never
    # read from a function URL event. Trusted only where the guard is told to (see guard.py).
    authorizer_claims: dict[str, Any] | None = None

    @classmethod
    def from_event(cls, event: dict[str, Any], request_id: str) -> HttpRequest:
        """Read either event format; a body that cannot be decoded is a 400."""
        if "httpMethod" in event and "rawPath" not in event:
            return cls._from_rest_api(event, request_id)
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
        return cls(
            method=str(http.get("method") or "GET").upper(),
            path=str(event.get("rawPath") or http.get("path") or "/"),
            raw_query=raw_query,
            query=query,
            headers=headers,
            body=_body(event),
            request_id=request_id,
        )

    @classmethod
    def _from_rest_api(cls, event: dict[str, Any], request_id: str) -> HttpRequest:
        """Read a REST API proxy event (payload 1.0): the query arrives decoded, repeated headers
        only in ``multiValueHeaders``, and the path without the stage."""
        pairs = [
            (str(name), str(value))
            for name, values in (event.get("multiValueQueryStringParameters") or {}).items()
            for value in (values or ())
        ]
        if not pairs:
            pairs = [
                (str(k), str(v)) for k, v in (event.get("queryStringParameters") or {}).items()
            ]
        multi = event.get("multiValueHeaders") or {}
        headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
        headers.update(
            {str(k).lower(): ",".join(map(str, values)) for k, values in multi.items() if values}
        )
        path = str(event.get("path") or "/")
        context = event.get("requestContext") or {}
        full_path = str(context.get("path") or path)
        # requestContext.path is the stage prefix and the path ("/api/chat"); a custom domain's
        # base path mapping shows there too.
        if path == "/":
            base_path = full_path.rstrip("/")
        elif full_path.endswith(path):
            base_path = full_path[: -len(path)]
        else:
            base_path = ""
        return cls(
            method=str(event.get("httpMethod") or "GET").upper(),
            path=path,
            raw_query=urlencode(pairs),
            # As for function URLs, the last value of a repeated name wins.
            query=dict(pairs),
            headers=headers,
            body=_body(event),
            request_id=request_id,
            via_rest_api=True,
            base_path=base_path,
            authorizer_claims=_authorizer_claims(context),
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


def _authorizer_claims(context: dict[str, Any]) -> dict[str, Any] | None:
    """The claims a Cognito user-pool authorizer put in a REST event, if it put any."""
    claims = (context.get("authorizer") or {}).get("claims")
    return claims if isinstance(claims, dict) and claims else None


def _body(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if not event.get("isBase64Encoded"):
        return str(body).encode("utf-8", errors="surrogatepass")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise RelayError(ErrorCode.INVALID_BODY, "the body is not valid base64") from None
