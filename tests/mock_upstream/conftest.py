"""One fake upstream for the whole directory, emptied before each test that uses it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from upstream_support import API_KEY

from mock_upstream.testing import MockUpstream, running_mock_upstream


@pytest.fixture(scope="session")
def shared_upstream() -> Iterator[MockUpstream]:
    # Short holds so stall and slow_headers tests stay quick unless they ask for longer.
    with running_mock_upstream(api_key=API_KEY, slow_headers_ms=300, stall_ms=300) as upstream:
        yield upstream


@pytest.fixture
def upstream(shared_upstream: MockUpstream) -> MockUpstream:
    shared_upstream.wait_idle()
    shared_upstream.clear()
    return shared_upstream
