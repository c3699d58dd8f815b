"""Calling the function's app itself, many bodies a second (the fuzz tests): a container without
access tokens on an event loop of its own, and one POST of a JSON body through it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from devtools.events import function_url_event
from devtools.stack import DevStack
from glm_relay.runtime import InvocationContext, now_ms
from glm_relay.web.app import WebApp

AppOnLoop = tuple[WebApp, asyncio.AbstractEventLoop]


def app_on_loop(stack: DevStack) -> Iterator[AppOnLoop]:
    """A container of the function without access tokens (nothing the fuzz sends reaches a
    secret) and the loop it runs on; closed when the generator ends."""
    assert stack.app is not None
    loop = asyncio.new_event_loop()
    yield WebApp(replace(stack.app.settings, require_access_token=False)), loop
    loop.close()


def post_json(
    app: AppOnLoop, target: str, payload: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """POST ``payload`` to ``target``: the status and the decoded JSON body. ``ensure_ascii``:
    an unpaired surrogate travels as its JSON escape, as a caller would send it. The request id
    fits Zhipu's 6-64 characters, since a valid request reaches the fake upstream."""
    web, loop = app
    raw = json.dumps(payload).encode()
    event = function_url_event(
        "POST", target, {"content-type": "application/json", **(headers or {})}, raw
    )
    context = InvocationContext(aws_request_id="fuzz-request", deadline_ms=now_ms() + 30_000)

    async def run() -> tuple[int, bytes]:
        response = await web.handle(event, context)
        return response.status_code, b"".join([frame async for frame in response.body])

    status, body = loop.run_until_complete(run())
    return status, json.loads(body)
