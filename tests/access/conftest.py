"""Fixtures for the access-token tests: a hand-made token forger and a valid payload."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from access_support import NOW, SIGNING_KEY, hs256, segment

Forge = Callable[..., str]


@pytest.fixture
def forge() -> Forge:
    """Build a compact token by hand, signed with HMAC-SHA256 over whatever header is given."""

    def build(
        payload: Any,
        header: Any = None,
        *,
        key: str = SIGNING_KEY,
        signature: str | None = None,
    ) -> str:
        head = segment({"alg": "HS256", "typ": "JWT"} if header is None else header)
        body = segment(payload)
        signing_input = f"{head}.{body}"
        return f"{signing_input}.{hs256(signing_input, key) if signature is None else signature}"

    return build


@pytest.fixture
def claims() -> dict[str, Any]:
    """A payload the verifier accepts at NOW; tests change one thing at a time."""
    return {"iss": "glm-relay", "sub": "alice", "iat": NOW - 10, "exp": NOW + 3600}
