"""``ZhipuClient.open_stream(on_sent=...)`` against the fake Zhipu on loopback: the hook fires once
the request is written (or waits on a secret read), before the answer's headers are back."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from glm_relay.chat.request import ChatRequest
from glm_relay.config import Settings
from glm_relay.upstream import CredentialStore, ZhipuClient
from mock_upstream.testing import MockUpstream, running_mock_upstream

KEY = "devid.devsecret"


class Source:
    async def fetch(self, *, force: bool = False) -> str:
        return KEY


@pytest.fixture(scope="module")
def upstream() -> Iterator[MockUpstream]:
    with running_mock_upstream(KEY) as running:
        yield running


async def test_the_hook_fires_when_the_request_is_out_of_our_hands(upstream: MockUpstream) -> None:
    credentials = CredentialStore(Source(), mode="raw")
    client = ZhipuClient(Settings.from_env({}, zhipu_base_url=upstream.base_url), credentials)
    chat = ChatRequest("glm-4.7", [{"role": "user", "content": "Hi #first=300 #chunks=1"}], 64)
    events: list[tuple[str, float]] = []

    def sent() -> None:
        events.append(("sent", time.monotonic()))

    for _ in range(2):  # cold (a secret read, a new connection), then warm (pooled, token cached)
        events.clear()
        started = time.monotonic()
        stream = await client.open_stream(
            chat, request_id=uuid.uuid4().hex, deadline=started + 30, on_sent=sent
        )
        events.append(("open", time.monotonic()))
        while await stream.read():
            pass
        await stream.aclose()
        names = [name for name, _ in events]
        assert names[0] == "sent" and names[-1] == "open"
        # Long before the headers, which the fake holds until its first token 300 ms in.
        assert events[0][1] - started < 0.2
    assert credentials.fresh
    await client.aclose()
