"""The suite's main cases through both front doors, end to end: the local function URL (payload
2.0 events) and a local API Gateway REST API stage (payload 1.0 events, paths under ``/api``),
each a container of the same stack (moto, the fake Zhipu). Each case asserts what the caller gets
and what reached the upstream; the last ones compare the two doors' bytes, request ids aside.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from devtools.stack import DevStack
from mock_upstream.answer import expected_chunks
from tests.support.sse_client import StreamResult, read_stream

pytestmark = pytest.mark.usefixtures("upstream_log")
MODEL = "glm-4-flash"


@pytest.fixture(params=["function-url", "rest-api"])
def base(request: pytest.FixtureRequest, stack: DevStack) -> str:
    """Where the relay's routes are: the function URL's root, or the REST API's stage."""
    if request.param == "function-url":
        return stack.url
    url: str = request.getfixturevalue("rest_api_url")
    return url


def chat_url(base: str, token: str, question: str) -> str:
    return f"{base}/chat?q={quote(question)}&access_token={token}"


def bearer(stack: DevStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token}"}


def ask(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def sse_chunks(raw: bytes) -> list[dict[str, Any]]:
    frames = [f for f in raw.split(b"\n\n") if f.startswith(b"data: {")]
    return [json.loads(f[len(b"data: ") :]) for f in frames]


def without_ids(raw: bytes, request_id: str) -> bytes:
    """The stream with what differs per request replaced: the request id, the upstream's answer
    id, OpenAI chunk ids and creation times; keepalive comments dropped."""
    text = raw.decode().replace(request_id, "<request-id>")
    text = re.sub(r'"upstream_id":"[^"]*"', '"upstream_id":"<id>"', text)
    text = re.sub(r'"id":"chatcmpl-[^"]*"', '"id":"<id>"', text)
    text = re.sub(r'"created":\d+', '"created":0', text)
    frames = [f for f in text.split("\n\n") if f and not f.startswith(":")]
    return "\n\n".join(frames).encode()


# --- each case, through each door ---------------------------------------------------------------


def test_get_chat_streams_exactly_the_upstream_text(base, stack, client, sent) -> None:
    result = read_stream(client, "GET", chat_url(base, stack.token, "Tell me of rivers #chunks=12"))

    assert result.status == 200
    assert result.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert result.names == ["meta", *["chat"] * 12, "done"]
    (body,) = sent()
    assert body["messages"] == ask("Tell me of rivers #chunks=12")
    assert result.text == "".join(expected_chunks(body))
    request_id = result.events[0].json["request_id"]
    assert request_id == result.headers["x-request-id"]
    assert [e.id for e in result.events] == [f"{request_id}:{n}" for n in range(1, 15)]


def test_post_chat_sends_the_messages_and_parameters(base, stack, client, sent) -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour"},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one #chunks=5"},
    ]
    payload = {"messages": messages, "model": "glm-4-air", "temperature": 0.2, "max_tokens": 100}

    result = read_stream(client, "POST", f"{base}/chat", json=payload, headers=bearer(stack))

    assert result.status == 200 and result.terminal.event == "done"
    (body,) = sent()
    assert body["messages"] == messages
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("glm-4-air", 0.2, 100)
    assert result.text == "".join(expected_chunks(body))


def test_v1_stream_is_openai_chunks_of_the_upstream_text(base, stack, client, sent) -> None:
    payload = {"model": MODEL, "messages": ask("Plain frames #chunks=5"), "stream": True}

    response = client.post(f"{base}/v1/chat/completions", json=payload, headers=bearer(stack))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.content.endswith(b"\n\ndata: [DONE]\n\n")
    chunks = sse_chunks(response.content)
    assert len(chunks) == 1 + 5 + 1  # role, pieces, finish
    assert chunks[-1]["choices"] == [{"index": 0, "delta": {}, "finish_reason": "stop"}]
    (body,) = sent()
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "".join(expected_chunks(body))


def test_v1_whole_answer_is_one_completion(base, stack, client, sent) -> None:
    payload = {"model": MODEL, "messages": ask("All at once #chunks=4")}

    response = client.post(f"{base}/v1/chat/completions", json=payload, headers=bearer(stack))

    assert response.status_code == 200
    completion = response.json()
    assert completion["object"] == "chat.completion"
    (body,) = sent()
    assert completion["choices"][0]["message"]["content"] == "".join(expected_chunks(body))
    assert completion["choices"][0]["finish_reason"] == "stop"


def test_errors_before_streaming_are_answered_whole_and_cost_nothing(
    base, stack, client, sent
) -> None:
    unknown = client.post(
        f"{base}/v1/chat/completions",
        json={"model": "gpt-4o", "messages": ask("Hello"), "stream": True},
        headers=bearer(stack),
    )
    no_token = client.get(f"{base}/chat?q=Hello")
    bad_json = client.post(
        f"{base}/chat",
        content=b"{not json",
        headers={**bearer(stack), "content-type": "application/json"},
    )

    assert unknown.status_code == 400
    assert unknown.json()["error"]["code"] == "model_not_allowed"
    assert unknown.json()["error"]["type"] == "invalid_request_error"
    assert no_token.status_code == 401
    assert no_token.json()["error"]["code"] == "unauthorized"
    assert no_token.headers["www-authenticate"] == 'Bearer realm="glm-relay"'
    assert bad_json.status_code == 400 and bad_json.json()["error"]["code"] == "invalid_json"
    assert sent() == []


def test_an_error_before_streaming_reaches_an_event_source_in_band(base, stack, client) -> None:
    result = read_stream(client, "GET", f"{base}/chat?q=&access_token={stack.token}")

    assert result.status == 200
    assert result.names == ["error"]
    assert result.terminal.json["code"] == "missing_prompt"


def test_a_reconnect_gets_the_rest_of_the_recorded_answer_then_204(
    base, stack, client, sent
) -> None:
    url = chat_url(base, stack.token, "Short and sweet #chunks=8")
    whole = read_stream(client, "GET", url)
    request_id = whole.events[0].json["request_id"]

    rest = read_stream(client, "GET", url, headers={"Last-Event-ID": f"{request_id}:3"})
    again = client.get(url, headers={"Last-Event-ID": whole.terminal.id or ""})

    assert rest.status == 200
    assert [e.id for e in rest.events] == [e.id for e in whole.events[3:]]
    assert [(e.event, e.data) for e in rest.events] == [(e.event, e.data) for e in whole.events[3:]]
    assert again.status_code == 204 and again.content == b""
    assert len(sent()) == 1  # one answer, however often it is read


def test_the_page_sends_its_requests_under_its_own_path(base, stack, client) -> None:
    page = client.get(f"{base}/")

    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    prefix = urlsplit(base).path  # "" for the function URL, "/api" for the REST API's stage
    assert f'<meta name="glm-relay-base" content="{prefix}">'.encode() in page.content


# --- the two doors side by side -----------------------------------------------------------------


def both(stack: DevStack, rest_api_url: str) -> list[str]:
    return [stack.url, rest_api_url]


def same_upstream_requests(bodies: list[dict[str, Any]], request_ids: list[str]) -> bool:
    """The upstream got the same request from each door, each naming its own request id."""
    assert [body["request_id"] for body in bodies] == request_ids
    first, second = ({k: v for k, v in body.items() if k != "request_id"} for body in bodies)
    return first == second


def test_get_chat_is_the_same_stream_through_both_doors(stack, rest_api_url, client, sent):
    question = "Same words either way #chunks=9"
    results: list[StreamResult] = [
        read_stream(client, "GET", chat_url(url, stack.token, question))
        for url in both(stack, rest_api_url)
    ]

    url_door, rest_door = (without_ids(r.raw, r.headers["x-request-id"]) for r in results)
    assert url_door == rest_door
    assert same_upstream_requests(sent(), [r.headers["x-request-id"] for r in results])


def test_v1_stream_and_page_are_the_same_through_both_doors(stack, rest_api_url, client, sent):
    payload = {"model": MODEL, "messages": ask("Either door #chunks=6"), "stream": True}
    streams = [
        client.post(f"{url}/v1/chat/completions", json=payload, headers=bearer(stack))
        for url in both(stack, rest_api_url)
    ]
    pages = [client.get(f"{url}/").content for url in both(stack, rest_api_url)]

    url_door, rest_door = (without_ids(r.content, r.headers["x-request-id"]) for r in streams)
    assert url_door == rest_door
    assert same_upstream_requests(sent(), [r.headers["x-request-id"] for r in streams])
    # The page differs only in where it sends its requests.
    assert pages[1].replace(b'content="/api"', b'content=""', 1) == pages[0]


def test_the_rest_api_door_serves_only_its_stage(stack, rest_api_url, client) -> None:
    origin = rest_api_url.removesuffix("/api")

    outside = client.get(f"{origin}/chat?q=Hello&access_token={stack.token}")
    stage_root = client.get(origin + "/api")

    assert outside.status_code == 403
    assert outside.json() == {"message": "Forbidden"}
    assert stage_root.status_code == 200
    assert b'content="/api"' in stage_root.content
