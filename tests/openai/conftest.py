"""OpenAI SDK clients pointed at the local function URL, and the fake upstream's request log."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

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
def refusal_of(stack: DevStack, client: httpx.Client) -> Callable[[str, str], dict]:
    """POST a JSON body written as text (what an SDK would not send, e.g. an unpaired surrogate)
    with the stack's token; the ``error`` of its 400 answer."""

    def post(path: str, body: str) -> dict:
        refused = client.post(
            stack.url + path,
            content=body.encode(),
            headers={"Authorization": f"Bearer {stack.token}", "Content-Type": "application/json"},
        )
        assert refused.status_code == 400, refused.text
        return refused.json()["error"]

    return post
