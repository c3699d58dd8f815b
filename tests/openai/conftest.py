"""OpenAI SDK clients pointed at the local function URL, and the fake upstream's request log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from openai import AsyncOpenAI, OpenAI

from devtools.stack import DevStack


@pytest.fixture
def oai(stack: DevStack) -> Iterator[OpenAI]:
    # No SDK retries: each test asserts how many requests reached the upstream.
    with OpenAI(base_url=stack.url + "/v1", api_key=stack.token, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
async def async_oai(stack: DevStack) -> AsyncIterator[AsyncOpenAI]:
    client = AsyncOpenAI(base_url=stack.url + "/v1", api_key=stack.token, max_retries=0, timeout=30)
    async with client:
        yield client


@pytest.fixture
def sent(stack: DevStack, client: httpx.Client, upstream_log: None) -> Any:
    """``sent()``: the bodies the fake upstream received since the test began."""
    assert stack.upstream is not None
    origin = stack.upstream.origin

    def bodies() -> list[dict[str, Any]]:
        records = client.get(f"{origin}/_mock/requests").json()["requests"]
        return [record["body"] for record in records]

    return bodies
