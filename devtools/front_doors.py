"""The two front doors the local URL can play: what each does before the function sees a request,
the event it builds, and what it adds to the answer.

A function URL (``FunctionUrlDoor``) serves every path with payload-2.0 events and answers CORS
itself, from its configuration. An API Gateway REST API stage (``RestApiDoor``) serves only under
``/<stage>``, sends the proxy event (payload 1.0) with the path past the stage, and answers no
CORS: preflights reach the function, as with template.yaml's API.

Example:
    door = RestApiDoor("api")                     # http://127.0.0.1:3000/api/chat -> /chat
    event = door.event(request, request_id)       # None: outside the stage, door.outside answers
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from devtools.events import function_url_event, rest_api_event
from devtools.http11 import RawRequest

CORS_ALLOW_METHODS = "GET, POST"
CORS_ALLOW_HEADERS = "authorization, content-type, last-event-id"
CORS_MAX_AGE = "600"


@dataclass(frozen=True, slots=True)
class Reply:
    """An answer the door gives itself; ``payload`` is a JSON body, ``None`` an empty one."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    payload: dict[str, str] | None = None


class FrontDoor(Protocol):
    """What the local URL asks of the front door it plays."""

    # The answer when the function fails before its first byte.
    failure: Reply

    def before(self, request: RawRequest) -> Reply | None:
        """An answer without calling the function (a preflight, a path outside the API)."""
        ...

    def event(self, request: RawRequest, request_id: str) -> dict[str, Any]:
        """The event the function receives for this request."""
        ...

    def add_headers(self, request: RawRequest, headers: dict[str, str]) -> None:
        """What the door adds to the function's answer."""
        ...


class FunctionUrlDoor:
    """A Lambda function URL: payload 2.0 for every path, CORS answered from its configuration."""

    failure = Reply(502, {"Connection": "close"}, {"Message": "Internal Server Error"})

    def __init__(self, allowed_origins: tuple[str, ...] = ("*",)) -> None:
        self.allowed_origins = allowed_origins

    def cors_origin(self, origin: str | None) -> str | None:
        if origin is None:
            return None
        if "*" in self.allowed_origins:
            return "*"
        return origin if origin in self.allowed_origins else None

    def before(self, request: RawRequest) -> Reply | None:
        if request.method != "OPTIONS" or not request.header("access-control-request-method"):
            return None
        # Preflights are answered by the function URL itself, never by the function.
        origin = self.cors_origin(request.header("origin"))
        if origin is None:
            return Reply(403, {"Content-Length": "0"})
        headers = {
            "Content-Length": "0",
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": CORS_ALLOW_METHODS,
            "Access-Control-Allow-Headers": CORS_ALLOW_HEADERS,
            "Access-Control-Max-Age": CORS_MAX_AGE,
            "Vary": "Origin",
        }
        return Reply(204, headers)

    def event(self, request: RawRequest, request_id: str) -> dict[str, Any]:
        return function_url_event(
            request.method,
            request.target,
            request.headers,
            request.body,
            request_id=request_id,
            host=request.header("host") or "127.0.0.1",
            source_ip=request.source_ip,
            protocol=request.version,
        )

    def add_headers(self, request: RawRequest, headers: dict[str, str]) -> None:
        origin = self.cors_origin(request.header("origin"))
        if origin:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Vary"] = "Origin"


class RestApiDoor:
    """An API Gateway REST API stage with ``ANY /`` and ``ANY /{proxy+}`` proxied to the function
    (template.yaml's ``RelayApi``): payload 1.0, paths under ``/<stage>``, no CORS of its own."""

    failure = Reply(502, {"Connection": "close"}, {"message": "Internal server error"})
    # What API Gateway answers for a path that is no stage of the API.
    outside = Reply(403, {}, {"message": "Forbidden"})

    def __init__(self, stage: str = "api") -> None:
        if not stage or "/" in stage:
            raise ValueError("a stage is one path segment, e.g. 'api'")
        self.stage = stage

    def target(self, target: str) -> str | None:
        """The path and query past the stage (``/api/chat?q=x`` -> ``/chat?q=x``), or ``None``."""
        path, mark, query = target.partition("?")
        prefix = f"/{self.stage}"
        if path != prefix and not path.startswith(prefix + "/"):
            return None
        return (path[len(prefix) :] or "/") + mark + query

    def before(self, request: RawRequest) -> Reply | None:
        return self.outside if self.target(request.target) is None else None

    def event(self, request: RawRequest, request_id: str) -> dict[str, Any]:
        target = self.target(request.target)
        assert target is not None, "before() answers requests outside the stage"
        return rest_api_event(
            request.method,
            target,
            request.headers,
            request.body,
            stage=self.stage,
            request_id=request_id,
            host=request.header("host") or "127.0.0.1",
            source_ip=request.source_ip,
        )

    def add_headers(self, request: RawRequest, headers: dict[str, str]) -> None:
        """Nothing: for API Gateway events the function answers CORS itself."""
