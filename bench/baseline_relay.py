"""The baseline the benchmarks compare against: the same relay, served the Lambda Web Adapter way.

A Lambda Web Adapter deployment runs an ordinary web server in the function (here uvicorn and
Starlette) and has the adapter forward each invocation to it over HTTP. This module is that
server around glm_relay's own logic: each request becomes the payload-2.0 event the function
would get, ``WebApp.handle`` validates, authorises, reads the secret, signs and opens the
upstream stream exactly as in the function, and the frames go out through Starlette's
``StreamingResponse``. What differs is what such apps are written with: the server stack and
its imports, the secret read through the SDK (Powertools and boto3, ``SECRETS_SOURCE=sdk``),
DynamoDB through a boto3 client with each call in a worker thread (:class:`Boto3Dynamo`), and
the straightforward order: the quota first, then the upstream request.

Run (prints ``baseline relay ready port=N`` once it accepts connections):
    python -m bench.baseline_relay --port 0       # settings from the environment, as the function
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import sys
import threading
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from glm_relay.chat.session import ChatService
from glm_relay.config import Settings
from glm_relay.runtime import InvocationContext, now_ms
from glm_relay.state import UserState
from glm_relay.web.app import WebApp
from glm_relay.web.services import Services

READY_PREFIX = "baseline relay ready port="
TIMEOUT_MS = 120_000
ARN = "arn:aws:lambda:us-east-1:000000000000:function:glm-relay-baseline"

_relay: WebApp | None = None


def relay() -> WebApp:
    """One ``WebApp`` per process, as one per container in Lambda."""
    global _relay
    if _relay is None:
        settings = Settings.from_env()
        services = Services.from_settings(settings)
        try:
            state = UserState(settings, client_factory=Boto3Dynamo)  # type: ignore[arg-type]
            chats = ChatService(settings, upstream=services.zhipu, ledger=state, overlap=False)
        except TypeError:
            pass  # a package from before either existed: boto3 and this order already
        else:
            services.state, services.chats = state, chats
        _relay = WebApp(settings, services=services)
    return _relay


class Boto3Dynamo:
    """DynamoDB as such apps reach it: a boto3 client built on first use (as the package did
    before), each blocking call in a worker thread; errors as the relay's client raises them."""

    def __init__(self) -> None:
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    import boto3
                    from botocore.config import Config

                    config = Config(
                        connect_timeout=2,
                        read_timeout=5,
                        retries={"mode": "standard", "max_attempts": 3},
                        max_pool_connections=50,
                    )
                    self._client = boto3.session.Session().client("dynamodb", config=config)
        return self._client

    async def post(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        return await asyncio.to_thread(self._call, operation, payload)

    def _call(self, operation: str, payload: dict[str, Any]) -> dict[str, Any]:
        from glm_relay.state.dynamo_client import ConditionFailed

        method = getattr(self.client(), re.sub(r"(?<!^)([A-Z])", r"_\1", operation).lower())
        try:
            result: dict[str, Any] = method(**payload)
        except Exception as exc:
            response = getattr(exc, "response", None)
            response = response if isinstance(response, dict) else {}
            error = response.get("Error", {})
            if error.get("Code") == "ConditionalCheckFailedException":
                body = {"Item": response["Item"]} if response.get("Item") else {}
                raise ConditionFailed(error["Code"], error.get("Message", ""), 400, body) from exc
            raise
        return result


def event_of(request: Request, body: bytes, request_id: str) -> dict[str, Any]:
    """The payload-2.0 event a function URL would send for ``request``."""
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return {
        "version": "2.0",
        "rawPath": request.url.path,
        "rawQueryString": request.url.query,
        "headers": headers,
        "requestContext": {
            "http": {
                "method": request.method,
                "path": request.url.path,
                "sourceIp": request.client.host if request.client else "127.0.0.1",
            },
            "requestId": request_id,
        },
        "body": body.decode("utf-8", errors="surrogateescape") if body else None,
        "isBase64Encoded": False,
    }


async def endpoint(request: Request) -> Response:
    request_id = str(uuid.uuid4())
    event = event_of(request, await request.body(), request_id)
    context = InvocationContext(
        aws_request_id=request_id, deadline_ms=now_ms() + TIMEOUT_MS, invoked_function_arn=ARN
    )
    response = await relay().handle(event, context)
    return StreamingResponse(
        _frames(response.body), status_code=response.status_code, headers=response.headers
    )


async def _frames(body: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """The body's frames; closed whatever happens, so the upstream request is released."""
    try:
        async for frame in body:
            yield frame
    finally:
        aclose = getattr(body, "aclose", None)
        if aclose is not None:
            await aclose()


app = Starlette(
    routes=[
        Route("/{path:path}", endpoint, methods=["GET", "POST", "HEAD"]),
    ]
)


class _Server(uvicorn.Server):
    """uvicorn's server, announcing on stdout once it accepts connections."""

    def __init__(self, config: uvicorn.Config, sock: socket.socket) -> None:
        super().__init__(config)
        self._sock = sock

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            print(READY_PREFIX + str(self._sock.getsockname()[1]), flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.baseline_relay", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    args = parser.parse_args(argv)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(128)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    server = _Server(config, sock)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
