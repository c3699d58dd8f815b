"""A ``/v1/responses`` stream cut mid-answer resumes like ``/v1``: ``Last-Event-ID:
<X-Request-Id>:<events received>`` gets exactly the rest of the events, from the record, with
no second upstream request; sequence numbers run on without a gap to one terminal event."""

from __future__ import annotations

import json

import httpx
import pytest

from mock_upstream.answer import expected_chunks
from tests.support.resume import Container, cut_after
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")


def events(raw: bytes) -> list[dict]:
    """The data of each event, keepalive comments left out."""
    blocks = [b for b in raw.decode().split("\n\n") if b and not b.startswith(":")]
    return [json.loads(b.split("\ndata: ", 1)[1]) for b in blocks]


def test_a_cut_responses_stream_resumes_with_the_rest_of_its_events(
    stack, client: httpx.Client, container: Container
) -> None:
    body = {"model": "glm-4-flash", "stream": True, "input": "Responses #chunks=16 #delay=20"}
    headers = {"Authorization": f"Bearer {stack.token}"}
    cut = cut_after(
        client, "POST", f"{container.url}/v1/responses", events=8, json=body, headers=headers
    )
    request_id = cut.headers["x-request-id"]
    kept = [event.json for event in cut.events]
    resumed = client.post(
        f"{stack.url}/v1/responses",
        json=body,
        headers={**headers, "Last-Event-ID": f"{request_id}:{len(kept)}"},
    )

    assert resumed.status_code == 200
    whole = kept + events(resumed.content)
    assert [e["sequence_number"] for e in whole] == list(range(len(whole)))
    kinds = [e["type"] for e in whole]
    assert kinds[-1] == "response.completed" and kinds.count("response.completed") == 1
    assert whole[-1]["response"]["id"] == f"resp_{request_id}"
    [sent] = upstream_bodies(stack, client)
    text = "".join(e["delta"] for e in whole if e["type"] == "response.output_text.delta")
    assert text == "".join(expected_chunks(sent))
