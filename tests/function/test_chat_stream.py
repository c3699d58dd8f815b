"""The function end to end: browser-shaped requests through the local function URL, the fake
Zhipu upstream and Secrets Manager in moto, asserting what a client and the upstream observe."""

from __future__ import annotations

import base64
import json
import time
from urllib.parse import quote

import httpx
import pytest

from devtools.stack import DevStack
from mock_upstream.answer import expected_chunks
from tests.support.sse_client import read_stream

pytestmark = pytest.mark.usefixtures("upstream_log")


def chat_url(stack: DevStack, question: str, **params: str) -> str:
    query = "&".join(f"{k}={quote(v)}" for k, v in {"q": question, **params}.items())
    return f"{stack.url}/chat?{query}&access_token={stack.token}"


def upstream_requests(stack: DevStack, client: httpx.Client) -> list[dict]:
    assert stack.upstream is not None
    return client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]


def test_get_chat_streams_exactly_the_upstream_text_in_order(stack, client) -> None:
    result = read_stream(client, "GET", chat_url(stack, "Tell me about rivers #chunks=40"))

    assert result.status == 200
    assert result.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert result.headers["cache-control"] == "no-cache"
    assert result.headers["x-accel-buffering"] == "no"
    assert result.names[0] == "meta" and result.names[-1] == "done"
    assert set(result.names[1:-1]) == {"chat"}
    sent = upstream_requests(stack, client)
    assert len(sent) == 1
    assert result.text == "".join(expected_chunks(sent[0]["body"]))
    assert len([n for n in result.names if n == "chat"]) == 40
    meta, done = result.events[0].json, result.terminal.json
    assert meta["request_id"] == result.headers["x-request-id"]
    assert meta["model"] == "glm-4-flash"
    assert done["finish_reason"] == "stop"
    assert done["usage"]["completion_tokens"] > 0
    assert done["upstream_id"]
    ids = [e.id for e in result.events]
    assert ids == [f"{meta['request_id']}:{n}" for n in range(1, len(ids) + 1)]


def test_each_chunk_reaches_the_client_before_the_upstream_sends_the_next(stack, client) -> None:
    # Every content chunk's text is the upstream's send time in ns; chunks are 150 ms apart.
    result = read_stream(client, "GET", chat_url(stack, "#stamp #chunks=6 #delay=150"))

    chats = [e for e in result.events if e.event == "chat"]
    assert len(chats) == 6
    for event in chats:
        sent_at = int(event.json["content"].split()[0]) / 1e9
        assert event.received_at - sent_at < 0.1, "a chunk waited for the next one"


def test_post_chat_with_messages_and_parameters(stack, client) -> None:
    body = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name a colour"},
            {"role": "assistant", "content": "Blue."},
            {"role": "user", "content": "Another one #chunks=5"},
        ],
        "model": "glm-4-air",
        "temperature": 0.2,
        "top_p": 0.9,
        "max_tokens": 100,
    }
    result = read_stream(
        client,
        "POST",
        f"{stack.url}/chat",
        json=body,
        headers={"Authorization": f"Bearer {stack.token}"},
    )

    assert result.status == 200 and result.names[-1] == "done"
    sent = upstream_requests(stack, client)[0]["body"]
    assert sent["messages"] == body["messages"]
    assert sent["model"] == "glm-4-air" and sent["stream"] is True
    assert (sent["temperature"], sent["top_p"], sent["max_tokens"]) == (0.2, 0.9, 100)
    assert result.text == "".join(expected_chunks(sent))


def test_reconnect_after_done_gets_204_and_no_upstream_call(stack, client) -> None:
    first = read_stream(client, "GET", chat_url(stack, "Hello"))
    response = client.get(
        chat_url(stack, "Hello"),
        headers={"Accept": "text/event-stream", "Last-Event-ID": first.terminal.id or ""},
    )

    assert response.status_code == 204 and response.content == b""
    assert len(upstream_requests(stack, client)) == 1


def test_upstream_receives_a_valid_zhipu_jwt(stack, client) -> None:
    before_ms = time.time() * 1000
    read_stream(client, "GET", chat_url(stack, "Hello"))

    record = upstream_requests(stack, client)[0]
    token = record["authorization"].removeprefix("Bearer ")
    header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
    claims = record["jwt_claims"]
    assert header == {"alg": "HS256", "sign_type": "SIGN", "typ": "JWT"} or (
        header["alg"] == "HS256" and header["sign_type"] == "SIGN"
    )
    assert claims["api_key"] == stack.api_key.split(".")[0]
    # The token is cached across requests: signed at most one lifetime ago, in milliseconds.
    assert stack.app is not None
    lifetime_ms = stack.app.settings.jwt_ttl_seconds * 1000
    assert before_ms - lifetime_ms < claims["timestamp"] <= time.time() * 1000
    assert claims["exp"] - claims["timestamp"] > 60_000  # milliseconds, not seconds


def test_unicode_split_across_chunks_arrives_intact(stack, client) -> None:
    result = read_stream(client, "GET", chat_url(stack, "#fault=unicode"))

    sent = upstream_requests(stack, client)[0]["body"]
    assert result.names[-1] == "done"
    assert result.text == "".join(expected_chunks(sent))
    assert any(ch in result.text for ch in "\r\n") and any(ord(ch) > 0xFFFF for ch in result.text)


def test_reasoning_and_tool_calls_get_their_own_events(stack, client) -> None:
    reasoning = read_stream(client, "GET", chat_url(stack, "Think first #fault=reasoning"))
    tool = read_stream(client, "GET", chat_url(stack, "Call a tool #fault=tool_call"))

    names = reasoning.names
    assert "reasoning" in names and names.index("reasoning") < names.index("chat")
    assert reasoning.terminal.event == "done"
    assert "tool_call" in tool.names
    call = next(e.json for e in tool.events if e.event == "tool_call")
    assert call["function"]["name"]
    assert tool.terminal.json["finish_reason"] == "tool_calls"


def test_the_secret_is_read_once_per_container_and_again_after_a_401(stack, client) -> None:
    assert stack.upstream is not None
    read_stream(client, "GET", chat_url(stack, "warm up"))
    # Rotate the key in Secrets Manager only: the container keeps using its cached key...
    stack.rotate_api_key("newid.newsecret")
    cached = read_stream(client, "GET", chat_url(stack, "still cached"))
    assert cached.terminal.event == "done"
    # ...until the upstream starts refusing the old key: one 401, re-read, re-sign, retry.
    client.put(f"{stack.upstream.origin}/_mock/api-key", json={"api_key": "newid.newsecret"})
    try:
        rotated = read_stream(client, "GET", chat_url(stack, "after rotation"))
        again = read_stream(client, "GET", chat_url(stack, "next one"))
    finally:
        ids = [r["jwt_claims"].get("api_key") for r in upstream_requests(stack, client)]
        client.put(f"{stack.upstream.origin}/_mock/api-key", json={"api_key": stack.api_key})
        stack.rotate_api_key(stack.api_key)
        read_stream(client, "GET", chat_url(stack, "back to the first key"))

    assert rotated.terminal.event == "done" and again.terminal.event == "done"
    assert ids == ["devid", "devid", "devid", "newid", "newid"]
