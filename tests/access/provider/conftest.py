"""Fixtures for the provider-token tests: a local identity provider, a clock, a verifier."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from provider_support import (
    AUDIENCE,
    ISSUER,
    NOW,
    FakeClock,
    IdentityProvider,
    MakeVerifier,
    rsa_key,
)

from glm_relay.access.provider import ProviderVerifier


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider = IdentityProvider()
    provider.publish(rsa_key())
    with provider.running():
        yield provider


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_verifier(idp: IdentityProvider, clock: FakeClock) -> MakeVerifier:
    def make(**options: Any) -> ProviderVerifier:
        settings: dict[str, Any] = {
            "issuer": ISSUER,
            "audience": AUDIENCE,
            "jwks_url": idp.jwks_url,
            "clock": clock,
            "fetch_timeout_seconds": 1.0,
        }
        settings.update(options)
        return ProviderVerifier(**settings)

    return make


@pytest.fixture
def verifier(make_verifier: MakeVerifier) -> ProviderVerifier:
    return make_verifier()


@pytest.fixture
def claims() -> dict[str, Any]:
    """A payload the default verifier accepts at NOW; tests change one thing at a time."""
    return {"iss": ISSUER, "aud": AUDIENCE, "sub": "user-42", "iat": NOW - 10, "exp": NOW + 600}
