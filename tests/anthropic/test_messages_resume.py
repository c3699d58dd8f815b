"""A ``/v1/messages`` stream cut mid-answer is resumed like a ``/v1`` one: the same request with
``Last-Event-ID: <X-Request-Id>:<events received>`` gets exactly the remaining events from the
record, ending in its one ``message_stop``, with no second upstream request."""

from __future__ import annotations

import json

import httpx
import pytest

from devtools.stack import DevStack
from mock_upstream.answer import expected_chunks
from tests.support.resume import Container, cut_after
from tests.support.sse_client import read_stream
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")


def events(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for frame in raw.decode().split("\n\n"):
        if frame.startswith("event: "):
            name, data = frame.split("\n")
            out.append((name[7:], json.loads(data[6:])))
    return out


def test_a_cut_messages_stream_resumes_with_exactly_the_rest(
    stack: DevStack, client: httpx.Client, container: Container
) -> None:
    body = {
        "model": "glm-4-flash",
        "max_tokens": 200,
        "stream": True,
        "messages": [{"role": "user", "content": "Resume me #chunks=16 #delay=20"}],
    }
    headers = {"x-api-key": stack.token, "anthropic-version": "2023-06-01"}
    url = f"{container.url}/v1/messages"
    cut = cut_after(client, "POST", url, events=5, json=body, headers=headers)
    request_id = cut.headers["x-request-id"]
    kept = events(cut.raw)
    assert len(kept) == 5
    rest = read_stream(
        client,
        "POST",
        f"{stack.url}/v1/messages?beta=true",
        json=body,
        headers={**headers, "Last-Event-ID": f"{request_id}:{len(kept)}"},
    )
    assert rest.status == 200
    whole = kept + events(rest.raw)
    names = [name for name, _ in whole]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert names.count("message_stop") == 1 and "error" not in names
    text = "".join(d["delta"]["text"] for n, d in whole if n == "content_block_delta")
    [sent] = upstream_bodies(stack, client)  # one upstream request for both
    assert text == "".join(expected_chunks(sent))
