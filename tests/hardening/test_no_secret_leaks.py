"""No key, signed upstream JWT or access token ever appears in a log line or a response.

One stack with a distinctive Zhipu key serves a broad set of requests (answers, every upstream
fault, forged and misplaced tokens, a key rotation, the OpenAI-shaped API) while everything is
captured: the function's log lines and metrics (it runs in-process, in the local URL's thread),
the fake upstream's output (its own process, stderr on the captured descriptor, stdout read
after it stops) and every byte of every response. Then no secret may appear anywhere in it, and
every request must have left exactly one summary line with its query redacted.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import jwt
import pytest

from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack
from glm_relay.access import mint_access_token

from .support import mint, sibling_stack, upstream_records

LEAK_KEY = "leakid.S3cr3tH4lfXYZ7q2w9e4rK"
LEAK_SECRET_HALF = LEAK_KEY.split(".")[1]
ROTATED_KEY = "leakrotid.R0t4t3dS3cr3tQWE5t8y1uP"
ROTATED_SECRET_HALF = ROTATED_KEY.split(".")[1]
FAST = {
    "idle_timeout_seconds": 1.5,
    "keepalive_seconds": 0.5,
    "retry_base_delay_seconds": 0.05,
    "retry_max_delay_seconds": 0.2,
}
GET_FAULTS = (
    *("auth", "expired", "rate_limit", "balance", "too_long", "sensitive_input"),
    *("server_error", "unavailable", "slow_headers", "stall", "drop", "malformed"),
    *("error_frame", "sensitive", "network_error", "length", "tool_call", "reasoning"),
    *("unicode", "crlf"),
)
POST_FAULTS = ("auth", "rate_limit", "slow_headers", "balance", "drop")


@dataclass
class Exchange:
    """One request and every byte of its answer."""

    label: str
    request_id: str
    query_token: bool  # whether an access token travelled in the query string
    raw: bytes


class Recorder:
    def __init__(self, stack: DevStack, client: httpx.Client) -> None:
        self.stack = stack
        self.client = client
        self.exchanges: list[Exchange] = []
        self.access_tokens: set[str] = set()

    def send(
        self,
        label: str,
        method: str,
        path: str,
        *,
        token: str | None = None,
        in_query: bool = False,
        **kwargs: Any,
    ) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}))
        url = f"{self.stack.url}{path}"
        if token is not None:
            self.access_tokens.add(token)
            if in_query:
                url += ("&" if "?" in url else "?") + f"access_token={quote(token, safe='')}"
            else:
                headers["Authorization"] = f"Bearer {token}"
        response = self.client.request(method, url, headers=headers, **kwargs)
        head = f"HTTP/1.1 {response.status_code}\r\n".encode()
        head += b"".join(name + b": " + value + b"\r\n" for name, value in response.headers.raw)
        request_id = response.headers.get("x-amzn-requestid", "")
        assert request_id, f"{label}: no request id"
        self.exchanges.append(Exchange(label, request_id, in_query, head + response.content))
        return response


@contextmanager
def relay_log_captured() -> Iterator[None]:
    """Point the function's log handler at the current (captured) stdout for this test.

    Powertools binds its handler to the ``sys.stdout`` of the moment the logger is first built,
    which in a pytest session may be an earlier capture; the lines are the same, only where they
    go changes.
    """
    handler = getattr(logging.getLogger("glm-relay"), "powertools_handler", None)
    assert isinstance(handler, logging.StreamHandler), "the function's logger is not set up"
    previous = handler.setStream(sys.stdout)
    try:
        yield
    finally:
        handler.setStream(previous)


def forged(secret: str = DEV_ACCESS_TOKEN_SECRET) -> list[str]:
    now = int(time.time())
    claims = {"iss": "glm-relay", "sub": "mallory", "iat": now, "exp": now + 3600}
    return [
        jwt.encode(claims, "another-signing-key-that-is-long-enough-0123", algorithm="HS256"),
        jwt.encode({**claims, "nbf": now + 900}, secret, algorithm="HS256"),
        mint_access_token("mallory", 60, secret, now=now - 3600),
        jwt.encode({**claims, "sub": "eve", "aud": "x"}, secret, algorithm="HS256"),
    ]


def exercise(rec: Recorder, stack: DevStack, valid: str) -> None:
    """The broad set of requests."""
    sse = {"Accept": "text/event-stream"}
    post_body = {"messages": [{"role": "user", "content": "leak post #chunks=4"}]}
    rec.send(
        "get-query-token",
        "GET",
        "/chat?q=leak+hello+%23chunks%3D4",
        token=valid,
        in_query=True,
        headers=sse,
    )
    rec.send(
        "get-header-token", "GET", "/chat?q=leak+header+%23chunks%3D4", token=valid, headers=sse
    )
    rec.send("post", "POST", "/chat", token=valid, json=post_body)
    for fault in GET_FAULTS:
        question = quote(f"leak get {fault} #fault={fault} #chunks=4 #after=2 #hold=2500")
        rec.send(
            f"get-{fault}",
            "GET",
            f"/chat?q={question}&model=glm-4-air",
            token=valid,
            in_query=True,
            headers=sse,
        )
    for fault in POST_FAULTS:
        body = {"messages": [{"role": "user", "content": f"leak post {fault} #fault={fault}"}]}
        rec.send(f"post-{fault}", "POST", "/chat", token=valid, json=body)
    for index, token in enumerate(forged()):
        rec.send(f"forged-{index}-header", "POST", "/chat", token=token, json=post_body)
        rec.send(
            f"forged-{index}-query", "GET", "/chat?q=hi", token=token, in_query=True, headers=sse
        )
    # The Zhipu key itself offered as an access token, in both places.
    rec.send("zhipu-key-as-token-header", "POST", "/chat", token=LEAK_KEY, json=post_body)
    rec.send("zhipu-key-as-token-query", "GET", "/chat?q=hi", token=LEAK_KEY, in_query=True)
    rec.send(
        "secret-looking-params",
        "GET",
        f"/chat?q=hi&api_key={LEAK_KEY}&secret={LEAK_SECRET_HALF}",
        token=valid,
    )
    rec.send(
        "bad-input",
        "POST",
        "/chat",
        token=valid,
        content=b"{",
        headers={"Content-Type": "application/json"},
    )
    openai = {"model": "glm-4-flash", "messages": [{"role": "user", "content": "leak v1"}]}
    rec.send(
        "v1-stream", "POST", "/v1/chat/completions", token=valid, json={**openai, "stream": True}
    )
    rec.send("v1-whole", "POST", "/v1/chat/completions", token=valid, json=openai)
    rec.send(
        "v1-auth-fault",
        "POST",
        "/v1/chat/completions",
        token=valid,
        json={**openai, "messages": [{"role": "user", "content": "leak v1 #fault=auth"}]},
    )
    rec.send("v1-models", "GET", "/v1/models", token=valid)
    sealed = exercise_responses(rec, valid)
    # The Messages API: the token as x-api-key, a forged one too, and a signed thinking block.
    messages = {
        "model": "glm-5.1",
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "leak messages #chunks=3"}],
    }
    for name, key in (("messages-api-key", valid), ("messages-forged-key", forged()[0])):
        rec.access_tokens.add(key)
        for stream in (True, False):
            rec.send(
                f"{name}-{stream}",
                "POST",
                "/v1/messages?beta=true",
                headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
                json={**messages, "stream": stream},
            )
    # The key rotates: Secrets Manager first, then the upstream stops taking the old one.
    assert stack.upstream is not None
    stack.rotate_api_key(ROTATED_KEY)
    rec.client.put(f"{stack.upstream.origin}/_mock/api-key", json={"api_key": ROTATED_KEY})
    rec.send(
        "after-rotation",
        "GET",
        "/chat?q=leak+rotated+%23chunks%3D3",
        token=valid,
        in_query=True,
        headers=sse,
    )
    rec.send(
        "after-rotation-auth-fault",
        "GET",
        "/chat?q=leak+rotated+%23fault%3Dauth",
        token=valid,
        in_query=True,
        headers=sse,
    )
    # A reasoning sealed under the old key comes back: refused, saying nothing of either key.
    refused = rec.send("responses-old-seal", "POST", "/v1/responses", token=valid, json=sealed)
    assert refused.json()["error"]["code"] == "invalid_parameter"


def exercise_responses(rec: Recorder, valid: str) -> dict[str, Any]:
    """``/v1/responses``: streamed with sealed reasoning, whole and stored, an upstream auth
    fault; returns a follow-up body that carries the sealed reasoning back."""
    sealed_turn = {
        "model": "glm-5.1",
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "tools": [{"type": "function", "name": "get_weather", "parameters": {"type": "object"}}],
    }
    question = {"role": "user", "content": "leak responses #tool=get_weather"}
    streamed = rec.send(
        "responses-stream",
        "POST",
        "/v1/responses",
        token=valid,
        json={**sealed_turn, "input": [question], "stream": True},
    )
    done = [line for line in streamed.text.splitlines() if '"response.completed"' in line]
    output = json.loads(done[0].removeprefix("data: "))["response"]["output"]
    assert any(item.get("encrypted_content") for item in output)
    call = next(item for item in output if item["type"] == "function_call")
    reply = {"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}
    follow_up = {**sealed_turn, "input": [question, *output, reply]}
    again = rec.send("responses-follow-up", "POST", "/v1/responses", token=valid, json=follow_up)
    assert again.status_code == 200, again.text
    whole = {"model": "glm-4-flash", "input": "leak responses whole"}
    stored = rec.send("responses-whole", "POST", "/v1/responses", token=valid, json=whole)
    rec.send("responses-get", "GET", f"/v1/responses/{stored.json()['id']}", token=valid)
    fault = {"model": "glm-4-flash", "input": "leak responses #fault=auth"}
    rec.send("responses-auth-fault", "POST", "/v1/responses", token=valid, json=fault)
    return follow_up


def summary_lines(captured: str) -> dict[str, list[dict[str, Any]]]:
    """The function's request summary lines by request id."""
    found: dict[str, list[dict[str, Any]]] = {}
    for line in captured.splitlines():
        if not line.startswith("{"):
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("message") == "request" and record.get("service") == "glm-relay":
            found.setdefault(record.get("request_id", ""), []).append(record)
    return found


def test_no_key_jwt_or_access_token_appears_in_any_output(
    stack: DevStack, capfd: pytest.CaptureFixture[str]
) -> None:
    captured: list[str] = []
    valid = mint("hardening-leaks")
    with (
        sibling_stack(
            stack,
            api_key=LEAK_KEY,
            settings_overrides=FAST,
            mock_args=["--slow-headers-ms", "2500", "--stall-ms", "2500", "--log-level", "info"],
        ) as leak,
        httpx.Client(timeout=30) as client,
    ):
        assert leak.app is not None and leak.upstream is not None
        upstream = leak.upstream
        leak.app.telemetry.logger  # noqa: B018 - builds the logger if this is the first request
        with relay_log_captured():
            rec = Recorder(leak, client)
            exercise(rec, leak, valid)
            upstream_jwts = [
                r["authorization"].removeprefix("Bearer ")
                for r in upstream_records(leak, client)
                if r["authorization"]
            ]
            expected_ids = {e.request_id for e in rec.exchanges}
            deadline = time.monotonic() + 5
            while True:
                out, err = capfd.readouterr()
                captured += [out, err]
                if expected_ids <= set(summary_lines("".join(captured))):
                    break
                assert time.monotonic() < deadline, "summary lines missing"
                time.sleep(0.05)
    assert upstream.process is not None and upstream.process.stdout is not None
    captured.append(upstream.process.stdout.read())
    out, err = capfd.readouterr()
    captured += [out, err]
    text = "".join(captured)
    haystack = text.encode() + b"".join(e.raw for e in rec.exchanges)

    # The set is as broad as intended: every fault ran, the key was rotated, logs were captured.
    assert len(rec.exchanges) >= 45
    assert len(upstream_jwts) >= len(GET_FAULTS) + len(POST_FAULTS)
    assert len(set(upstream_jwts)) >= 2, "the rotation and the 401 refreshes re-sign the JWT"
    assert all(token.count(".") == 2 for token in upstream_jwts)
    secrets = {
        "the Zhipu key": LEAK_KEY,
        "its secret half": LEAK_SECRET_HALF,
        "the rotated key": ROTATED_KEY,
        "the rotated secret half": ROTATED_SECRET_HALF,
    }
    for index, token in enumerate(sorted(set(upstream_jwts))):
        secrets[f"upstream JWT {index}"] = token
        secrets[f"upstream JWT {index} signature"] = token.rsplit(".", 1)[1]
    for index, token in enumerate(sorted(rec.access_tokens - {LEAK_KEY})):
        secrets[f"access token {index}"] = token
        if len(signature := token.rsplit(".", 1)[1]) >= 16:
            secrets[f"access token {index} signature"] = signature
    leaked = [name for name, value in secrets.items() if value.encode() in haystack]
    assert leaked == [], f"found in the output: {leaked}"

    lines = summary_lines(text)
    for exchange in rec.exchanges:
        found = lines.get(exchange.request_id, [])
        assert len(found) == 1, f"{exchange.label}: {len(found)} summary lines"
        query = found[0].get("query") or ""
        if exchange.query_token:
            assert "access_token=REDACTED" in query, f"{exchange.label}: {query}"
        assert "access_token=" not in query.replace("access_token=REDACTED", "")
    secret_params = lines[_id_of(rec, "secret-looking-params")][0]["query"]
    assert secret_params == "q=hi&api_key=REDACTED&secret=REDACTED"


def _id_of(rec: Recorder, label: str) -> str:
    return next(e.request_id for e in rec.exchanges if e.label == label)
