"""The baseline the benchmarks compare against: the same relay, served the Lambda Web Adapter way.

A Lambda Web Adapter deployment runs an ordinary web server in the function (here uvicorn and
Starlette) and has the adapter forward each invocation to it over HTTP. This module is that
server around glm_relay's own logic: each request becomes the payload-2.0 event the function
would get, ``WebApp.handle`` validates, authorises, reads the secret, signs and opens the
upstream stream exactly as in the function, and the frames go out through Starlette's
``StreamingResponse``. So the two differ only in what the shapes differ in: the server stack and
its imports, and (by default here) the SDK read of the secret that such apps use.

Run (prints ``baseline relay ready port=N`` once it accepts connections):
    python -m bench.baseline_relay --port 0       # settings from the environment, as the function
"""

from __future__ import annotations

import argparse
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from glm_relay.config import Settings
from glm_relay.runtime import InvocationContext, now_ms
from glm_relay.web.app import WebApp

READY_PREFIX = "baseline relay ready port="
TIMEOUT_MS = 120_000
ARN = "arn:aws:lambda:us-east-1:000000000000:function:glm-relay-baseline"

_relay: WebApp | None = None


def relay() -> WebApp:
    """One ``WebApp`` per process, as one per container in Lambda."""
    global _relay
    if _relay is None:
        _relay = WebApp(Settings.from_env())
    return _relay


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
