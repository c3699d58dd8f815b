"""OpenAI SDK clients pointed at the local function URL, and the fake upstream's request log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

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
