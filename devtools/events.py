"""The events a function URL sends a function (payload format 2.0), built in one place.

The local function URL builds every event with ``function_url_event``, and tests that call a
handler directly use the same builder, so both see exactly the shape Lambda delivers: headers
lower-cased and repeated ones joined with commas, cookies split out, query parameters decoded,
a text body as is and anything else base64-encoded.

Example:
    event = function_url_event("GET", "/chat?q=hi", {"accept": "text/event-stream"})
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote

TEXT_TYPES = ("text/", "application/json", "application/x-www-form-urlencoded", "application/xml")


def function_url_event(
    method: str,
    target: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    request_id: str | None = None,
    host: str = "127.0.0.1",
    source_ip: str = "127.0.0.1",
    protocol: str = "HTTP/1.1",
) -> dict[str, Any]:
    """The payload-2.0 event for one request (``target`` is the path and raw query)."""
    path, _, raw_query = target.partition("?")
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for raw_name, value in pairs:
        name = raw_name.lower()
        if name == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    query = {key: ",".join(values) for key, values in _query_values(raw_query).items()}
    text, is_text = _encoded_body(body, joined.get("content-type", ""))
    now = datetime.now(UTC)
    request_id = request_id or str(uuid.uuid4())
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": unquote(path) if path else "/",
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": "anonymous",
            "apiId": "local",
            "domainName": host,
            "domainPrefix": host.split(".")[0],
            "http": {
                "method": method.upper(),
                "path": unquote(path) if path else "/",
                "protocol": protocol,
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": request_id,
            "routeKey": "$default",
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpochMs": int(now.timestamp() * 1000),
        },
        "body": text if body else None,
        "isBase64Encoded": not is_text,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    return event


def rest_api_event(
    method: str,
    target: str,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] = (),
    body: bytes = b"",
    *,
    stage: str = "api",
    request_id: str | None = None,
    host: str = "abc123.execute-api.us-east-1.amazonaws.com",
    source_ip: str = "127.0.0.1",
    authorizer_claims: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The proxy event (payload 1.0) an API Gateway REST API sends for one request: the path
    without the stage, the query decoded into maps, repeated headers only in the multi map.
    ``authorizer_claims``: what a Cognito user-pool authorizer passes on (every value a string)."""
    path, _, raw_query = target.partition("?")
    path = unquote(path) or "/"
    pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
    multi_headers: dict[str, list[str]] = {}
    for name, value in pairs:
        multi_headers.setdefault(name, []).append(value)
    multi_query = _query_values(raw_query)
    content_type = next((v for k, v in pairs if k.lower() == "content-type"), "")
    text, is_text = _encoded_body(body, content_type)
    now = datetime.now(UTC)
    full_path = f"/{stage}{path}" if stage else path
    event: dict[str, Any] = {
        "resource": "/" if path == "/" else "/{proxy+}",
        "path": path,
        "httpMethod": method.upper(),
        "headers": {name: values[-1] for name, values in multi_headers.items()} or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": None if path == "/" else {"proxy": path.lstrip("/")},
        "stageVariables": None,
        "requestContext": {
            "resourcePath": "/" if path == "/" else "/{proxy+}",
            "httpMethod": method.upper(),
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "path": full_path,
            "accountId": "123456789012",
            "protocol": "HTTP/1.1",
            "stage": stage,
            "domainPrefix": host.split(".")[0],
            "requestId": request_id or str(uuid.uuid4()),
            "identity": {"sourceIp": source_ip, "userAgent": ""},
            "domainName": host,
            "apiId": host.split(".")[0],
        },
        "body": text if body else None,
        "isBase64Encoded": not is_text,
    }
    if authorizer_claims is not None:
        event["requestContext"]["authorizer"] = {"claims": dict(authorizer_claims)}
    return event


def _query_values(raw_query: str) -> dict[str, list[str]]:
    """Each decoded name's decoded values, in order."""
    values: dict[str, list[str]] = {}
    for pair in filter(None, raw_query.split("&")):
        key, _, value = pair.partition("=")
        key, value = unquote(key.replace("+", " ")), unquote(value.replace("+", " "))
        values.setdefault(key, []).append(value)
    return values


def _encoded_body(body: bytes, content_type: str) -> tuple[str, bool]:
    """The body as Lambda passes it: text as is, anything else base64 (and so flagged)."""
    if not body or content_type.startswith(TEXT_TYPES):
        try:
            return body.decode("utf-8"), True
        except UnicodeDecodeError:
            pass
    return base64.b64encode(body).decode(), False
