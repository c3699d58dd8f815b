"""The Starlette application: the chat endpoint plus the `/_mock/*` introspection routes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mock_upstream.chat import ChatCompletions, MockState
from mock_upstream.options import KEY_FAULTS, MockOptions

API_PREFIX = "/api/paas/v4"
CHAT_PATH = API_PREFIX + "/chat/completions"


def build_app(options: MockOptions) -> Starlette:
    """The fake Zhipu server for `options`; its state lives in `app.state.mock`."""
    state = MockState(options)

    async def list_requests(request: Request) -> Response:
        return JSONResponse({"requests": state.recorder.requests()})

    async def clear_requests(request: Request) -> Response:
        state.clear()
        return Response(status_code=204)

    async def stats(request: Request) -> Response:
        return JSONResponse(state.recorder.stats())

    async def set_api_key(request: Request) -> Response:
        try:
            payload = await request.json()
            state.options = replace(state.options, api_key=payload["api_key"])
        except (ValueError, KeyError, TypeError) as exc:
            return JSONResponse({"error": f"expected {{'api_key': 'id.secret'}}: {exc}"}, 400)
        return Response(status_code=204)

    async def set_key_fault(request: Request) -> Response:
        key_id = request.path_params["key_id"]
        try:
            fault = (await request.json()).get("fault")
            faults = {k: v for k, v in state.options.key_faults.items() if k != key_id}
            if fault is not None:
                faults[key_id] = fault
            state.options = replace(state.options, key_faults=faults)
        except (ValueError, AttributeError) as exc:
            return JSONResponse(
                {"error": f"expected {{'fault': one of {KEY_FAULTS} or null}}: {exc}"}, 400
            )
        return Response(status_code=204)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route(CHAT_PATH, ChatCompletions(state), methods=["POST"]),
            Route("/_mock/requests", list_requests, methods=["GET"]),
            Route("/_mock/requests", clear_requests, methods=["DELETE"]),
            Route("/_mock/stats", stats, methods=["GET"]),
            Route("/_mock/api-key", set_api_key, methods=["PUT"]),
            Route("/_mock/keys/{key_id}", set_key_fault, methods=["PUT"]),
            Route("/_mock/health", health, methods=["GET"]),
        ]
    )
    app.state.mock = state
    return app


def create_app(api_key: str, **options: Any) -> Starlette:
    """Build the app from keyword options (see `MockOptions`), e.g. for an ASGI test client.

    >>> app = create_app("devid.devsecret", chunk_delay_ms=5)
    """
    return build_app(MockOptions(api_key=api_key, **options))
