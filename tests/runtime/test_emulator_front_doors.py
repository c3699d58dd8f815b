"""``make invoke`` with a REST API event: under the Runtime Interface Emulator, the API Gateway
event of ``events/api-gateway/get-chat.json`` streams the same SSE as the function URL's
``events/get-chat.json`` (the same request from the other door), request and answer ids aside."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from devtools.emulator import Emulator, FramedResponse, parse_framed
from devtools.stack import DevStack

from .support import ROOT

URL_EVENT = ROOT / "events" / "get-chat.json"
REST_EVENT = ROOT / "events" / "api-gateway" / "get-chat.json"
# Headers that differ per request or only say which door answered (CORS is the function's
# job behind API Gateway, so its responses vary by Origin).
PER_DOOR = {"x-request-id", "vary"}


@pytest.fixture(scope="module")
def emulator(relay_env: dict[str, str]) -> Iterator[Emulator]:
    with Emulator(env={**relay_env, "_HANDLER": "glm_relay.handler.handle"}) as running:
        yield running


def without_ids(body: bytes) -> str:
    """The SSE with the request id (in ids and the meta event) and the upstream's id replaced."""
    text = body.decode()
    (request_id,) = set(re.findall(r"^id: ([0-9a-f-]{36}):\d+$", text, re.MULTILINE))
    text = text.replace(request_id, "<request-id>")
    return re.sub(r'"upstream_id":"[^"]*"', '"upstream_id":"<id>"', text)


def shared_headers(framed: FramedResponse) -> dict[str, str]:
    return {k.lower(): v for k, v in framed.headers.items() if k.lower() not in PER_DOOR}


def test_the_rest_event_streams_the_same_sse_as_the_function_url_event(
    emulator: Emulator, stack: DevStack, client: httpx.Client
) -> None:
    assert stack.upstream is not None
    client.delete(f"{stack.upstream.origin}/_mock/requests")

    url = parse_framed(emulator.invoke(URL_EVENT))
    rest = parse_framed(emulator.invoke(REST_EVENT))

    assert url.status_code == rest.status_code == 200
    assert shared_headers(url) == shared_headers(rest)
    assert shared_headers(rest)["content-type"] == "text/event-stream; charset=utf-8"
    assert b"event: done" in rest.body
    assert without_ids(url.body) == without_ids(rest.body)
    # And the same request reached Zhipu from each, but for the request id it carries.
    bodies = [
        r["body"] for r in client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]
    ]
    assert len(bodies) == 2
    for body in bodies:
        body.pop("request_id", None)
    assert bodies[0] == bodies[1]


def test_make_invoke_runs_the_rest_event_with_its_own_backends(tmp_path: Path) -> None:
    # What `make invoke EVENT=events/api-gateway/get-chat.json` runs: the CLI starts moto and the
    # fake Zhipu itself; both events in one emulator, answered one after the other.
    env = {**os.environ, "PYTHONPATH": f"{ROOT / 'functions' / 'relay'}{os.pathsep}{ROOT}"}
    for name in (
        "ZHIPU_SECRET_ID",
        "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ):
        env.pop(name, None)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.emulator",
            "--event",
            str(REST_EVENT),
            "--event",
            str(URL_EVENT),
            "--raw",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        timeout=180,
        check=False,
    )

    assert result.returncode == 0, result.stderr.decode()[-2000:]
    # --raw: each answer is its prelude, 8 NUL bytes, then the body, back to back.
    parts = re.split(rb"(?=\{\"statusCode\":)", result.stdout)
    rest, url = (parse_framed(part) for part in parts if part)
    assert rest.status_code == url.status_code == 200
    assert without_ids(rest.body) == without_ids(url.body)
