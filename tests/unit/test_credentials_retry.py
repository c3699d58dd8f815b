"""A container that read the placeholder key before the operator stored the real one.

The secret source below is the real in-memory cache (``CachedSecretSource``) over a store the test
writes to, and both it and the credential store run on one injected clock: nothing sleeps.
"""

from __future__ import annotations

import pytest

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.secrets import CachedSecretSource
from glm_relay.upstream.credentials import BAD_KEY_RETRY_SECONDS, CredentialStore

PLACEHOLDER = "REPLACE_ME"
REAL_KEY = "real-id.real-secret"
CACHE_SECONDS = 900


class Clock:
    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


class StoredSecret(CachedSecretSource):
    """Secrets Manager behind the container's cache: ``value`` is what the operator stored."""

    def __init__(self, clock: Clock) -> None:
        super().__init__("glm-relay/zhipu", max_age_seconds=CACHE_SECONDS, clock=clock)
        self.value = PLACEHOLDER
        self.reads: list[bool] = []

    async def _read(self, force: bool) -> str:
        self.reads.append(force)
        return self.value


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def secret(clock: Clock) -> StoredSecret:
    return StoredSecret(clock)


@pytest.fixture
def store(secret: StoredSecret, clock: Clock) -> CredentialStore:
    return CredentialStore(secret, mode="raw", clock=clock)


async def refused(store: CredentialStore) -> ErrorCode:
    with pytest.raises(RelayError) as error:
        await store.authorization()
    return error.value.code


def test_the_retry_interval_is_a_second() -> None:
    # The next request after the operator stores the key must work, not one ten seconds later.
    assert BAD_KEY_RETRY_SECONDS == 1.0


async def test_the_first_request_after_the_interval_reads_the_stored_key(
    store: CredentialStore, secret: StoredSecret, clock: Clock
) -> None:
    assert await refused(store) is ErrorCode.CONFIGURATION_ERROR
    secret.value = REAL_KEY  # put-secret-value; the container's cache still holds the placeholder

    clock.now += BAD_KEY_RETRY_SECONDS / 2
    assert await refused(store) is ErrorCode.CONFIGURATION_ERROR
    clock.now += BAD_KEY_RETRY_SECONDS / 2

    assert await store.authorization() == f"Bearer {REAL_KEY}"
    # One plain read at the start, one forced read past the cache once the interval was over.
    assert secret.reads == [False, True]


async def test_an_unusable_key_is_read_again_at_most_once_per_interval(
    store: CredentialStore, secret: StoredSecret, clock: Clock
) -> None:
    for _ in range(40):  # 40 requests over 4 seconds
        assert await refused(store) is ErrorCode.CONFIGURATION_ERROR
        clock.now += 0.1

    assert secret.reads.count(True) == 3  # at 1, 2 and 3 seconds (4 is not reached)
    assert secret.reads[0] is False


async def test_a_good_key_is_trusted_for_the_cache_lifetime(
    store: CredentialStore, secret: StoredSecret, clock: Clock
) -> None:
    secret.value = REAL_KEY
    assert await store.authorization() == f"Bearer {REAL_KEY}"
    secret.value = PLACEHOLDER
    clock.now += CACHE_SECONDS - 1

    assert await store.authorization() == f"Bearer {REAL_KEY}"
    assert secret.reads == [False]
