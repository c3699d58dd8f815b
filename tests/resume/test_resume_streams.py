"""Resumable streams end to end: a client cut mid-answer reconnects with its Last-Event-ID and gets
exactly the rest, from the record in DynamoDB, without a second upstream request.

Answers are served by a second container (``container``: Lambda's behaviour, the answer runs on
after its client left); resumes go to it or to the session stack's own container.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace

import httpx
import pytest

from devtools.events import function_url_event
from devtools.stack import DevStack
from glm_relay.access import mint_access_token
from glm_relay.runtime import InvocationContext, now_ms
from glm_relay.web.app import WebApp
from mock_upstream.answer import expected_chunks
from tests.support.resume import Container, chat_url, cut_after, wait_upstream_idle
from tests.support.sse_client import read_stream
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")


def resume(client: httpx.Client, url: str, last_id: str, **kwargs):
    headers = {"Last-Event-ID": last_id, **kwargs.pop("headers", {})}
    return read_stream(client, kwargs.pop("method", "GET"), url, headers=headers, **kwargs)


def without_comments(raw: bytes) -> bytes:
    return b"".join(f + b"\n\n" for f in raw.split(b"\n\n") if f and not f.startswith(b":"))


@pytest.mark.parametrize("resume_at", ["same container", "another container"])
def test_a_cut_client_gets_exactly_the_rest_of_its_answer_once(
    stack, client, container: Container, resume_at
) -> None:
    url = chat_url(container.url, "Tell me about rivers #chunks=40 #delay=25", stack.token)
    cut = cut_after(client, "GET", url, events=6)
    request_id = cut.events[0].json["request_id"]
    assert cut.events[-1].id == f"{request_id}:6"

    base = container.url if resume_at == "same container" else stack.url
    rest = resume(client, chat_url(base, "ignored", stack.token), cut.events[-1].id)

    assert rest.status == 200 and rest.headers["content-type"].startswith("text/event-stream")
    ids = [e.id for e in rest.events]
    assert ids[0] == f"{request_id}:7" and ids == [f"{request_id}:{n}" for n in range(7, 43)]
    assert rest.only_terminal_is_last() and rest.terminal.event == "done"
    [sent] = upstream_bodies(stack, client)
    assert cut.text + rest.text == "".join(expected_chunks(sent))
    # Byte for byte: what was cut and what was resumed is the whole stream, as recorded.
    whole = resume(client, chat_url(base, "ignored", stack.token), f"{request_id}:0")
    assert cut.raw + without_comments(rest.raw) == without_comments(whole.raw)
    stats = wait_upstream_idle(stack, client)
    assert (stats["completed_streams"], stats["cancelled_streams"]) == (1, 0)


def test_a_reconnect_after_the_answer_ended_gets_the_rest_at_once_then_204(
    stack, client, container: Container
) -> None:
    url = chat_url(container.url, "Short and sweet #chunks=8 #delay=20", stack.token)
    cut = cut_after(client, "GET", url, events=2)
    wait_upstream_idle(stack, client)

    rest = resume(client, url, cut.events[-1].id)
    assert [e.event for e in rest.events] == ["chat"] * 7 + ["done"]
    [sent] = upstream_bodies(stack, client)
    assert cut.text + rest.text == "".join(expected_chunks(sent))

    # Everything seen: 204, so a browser stops; no second answer either.
    again = client.get(url, headers={"Last-Event-ID": rest.terminal.id or ""})
    assert again.status_code == 204 and again.content == b""
    assert len(upstream_bodies(stack, client)) == 1


def test_only_the_caller_who_started_a_stream_may_resume_it(
    stack, client, container: Container
) -> None:
    url = chat_url(container.url, "Mine alone #chunks=6", stack.token)
    first = read_stream(client, "GET", url)
    request_id = first.events[0].json["request_id"]
    stranger = mint_access_token("someone-else", 600, stack.access_token_secret)

    theirs = client.get(
        chat_url(stack.url, "x", stranger), headers={"Last-Event-ID": f"{request_id}:1"}
    )
    unknown = client.get(
        chat_url(stack.url, "x", stack.token), headers={"Last-Event-ID": "no-such-stream:1"}
    )
    malformed = client.get(
        chat_url(stack.url, "x", stack.token), headers={"Last-Event-ID": "nonsense"}
    )
    unsigned = client.get(
        chat_url(stack.url, "x", "not-a-token"),
        headers={"Last-Event-ID": f"{request_id}:1", "Accept": "application/json"},
    )

    # Someone else's stream looks exactly like one that does not exist.
    assert (theirs.status_code, theirs.content) == (204, b"")
    assert (unknown.status_code, unknown.content) == (204, b"")
    assert (malformed.status_code, malformed.content) == (204, b"")
    assert unsigned.status_code == 401
    mine = resume(client, chat_url(stack.url, "x", stack.token), f"{request_id}:1")
    assert mine.text == first.text and mine.terminal.event == "done"
    assert len(upstream_bodies(stack, client)) == 1


def test_post_chat_resumes_with_last_event_id_on_the_same_post(
    stack, client, container: Container
) -> None:
    body = {"messages": [{"role": "user", "content": "Posted #chunks=20 #delay=20"}]}
    headers = {"Authorization": f"Bearer {stack.token}"}
    cut = cut_after(client, "POST", f"{container.url}/chat", 4, json=body, headers=headers)

    rest = resume(
        client,
        f"{stack.url}/chat",
        cut.events[-1].id,
        method="POST",
        json=body,
        headers=headers,
    )
    [sent] = upstream_bodies(stack, client)
    assert cut.text + rest.text == "".join(expected_chunks(sent))
    assert rest.events[0].id == cut.events[-1].id[:-1] + "5"
    assert rest.only_terminal_is_last() and rest.terminal.event == "done"


def openai_data(raw: bytes) -> list[str]:
    return [line[6:] for line in raw.decode().split("\n") if line.startswith("data: ")]


def test_v1_streams_resume_by_request_id_and_data_frames_received(
    stack, client, container: Container
) -> None:
    body = {
        "model": "glm-4-flash",
        "stream": True,
        "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "OpenAI style #chunks=16 #delay=20"}],
    }
    headers = {"Authorization": f"Bearer {stack.token}"}
    url = f"{container.url}/v1/chat/completions"
    with client.stream("POST", url, json=body, headers=headers) as response:
        request_id = response.headers["x-request-id"]
        received = b""
        for chunk in response.iter_raw():
            received += chunk
            if received.count(b"\n\n") >= 5:
                break
    kept = openai_data(received[: received.rindex(b"\n\n") + 2])
    rest = resume(
        client,
        f"{stack.url}/v1/chat/completions",
        f"{request_id}:{len(kept)}",
        method="POST",
        json=body,
        headers=headers,
    )
    assert rest.status == 200
    data = kept + openai_data(rest.raw)
    assert data[-1] == "[DONE]" and data.count("[DONE]") == 1
    chunks = [json.loads(d) for d in data[:-1]]
    assert all(c["id"] == f"chatcmpl-{request_id}" for c in chunks)
    text = "".join((c["choices"][0]["delta"].get("content") or "") for c in chunks if c["choices"])
    [sent] = upstream_bodies(stack, client)
    assert text == "".join(expected_chunks(sent))
    assert chunks[-1]["usage"]["completion_tokens"] == 16

    # The terminal frame holds three data lines; a client that has two of them gets the third.
    tail = resume(
        client, url, f"{request_id}:{len(data) - 1}", method="POST", json=body, headers=headers
    )
    assert openai_data(tail.raw) == ["[DONE]"]


def quota_requests(stack: DevStack) -> int:
    assert stack.app is not None
    day = time.strftime("%Y-%m-%d", time.gmtime())
    item = stack.moto.client("dynamodb").get_item(
        TableName=stack.app.settings.conversations_table,
        Key={"pk": {"S": "QUOTA#developer"}, "sk": {"S": f"DAY#{day}"}},
        ConsistentRead=True,
    )
    return int(item["Item"]["requests"]["N"])


def test_resuming_costs_no_quota(stack, client, container: Container) -> None:
    url = chat_url(container.url, "Quota check #chunks=5", stack.token)
    first = read_stream(client, "GET", url)
    before = quota_requests(stack)
    for _ in range(3):
        again = resume(client, url, first.events[1].id or "")
        assert again.text == "".join(e.json["content"] for e in first.events[2:-1])
    assert quota_requests(stack) == before
    assert len(upstream_bodies(stack, client)) == 1


async def test_with_resumable_streams_off_a_reconnect_gets_204_and_nothing_is_recorded(
    stack,
) -> None:
    assert stack.app is not None
    settings = replace(stack.app.settings, resumable_streams=False, require_access_token=False)
    app = WebApp(settings)
    assert app.services.journal is None
    headers = {"accept": "text/event-stream", "last-event-id": "some-stream:3"}
    event = function_url_event("GET", "/chat?q=hi", headers, request_id="off-1")
    context = InvocationContext("off-1", now_ms() + 30_000)
    response = await app.handle(event, context)
    assert response.status_code == 204
