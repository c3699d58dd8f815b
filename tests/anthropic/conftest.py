"""Anthropic SDK clients pointed at the local function URL (its base URL is the function URL:
the SDK adds ``/v1/messages`` itself)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from anthropic import Anthropic

from devtools.stack import DevStack


@pytest.fixture
def claude(stack: DevStack) -> Iterator[Anthropic]:
    # No SDK retries: each test asserts how many requests reached the upstream.
    with Anthropic(base_url=stack.url, api_key=stack.token, max_retries=0, timeout=30) as client:
        yield client
