"""Several keys of one account: each accepted, each recorded, each able to be made invalid, out of
balance or rate limited, from the command line's options or at run time."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from upstream_support import body, post, sign

from mock_upstream.testing import MockUpstream, running_mock_upstream

KEYS = ",".join(
    f"{key_id}.secret-{n}-long-enough-for-hs256-keys"
    for key_id, n in (("first", "one"), ("second", "two"), ("third", "three"))
)


@pytest.fixture
def pool_upstream() -> Iterator[MockUpstream]:
    with running_mock_upstream(api_key=KEYS, retry_after=7, key_faults={"third": "balance"}) as up:
        yield up


def test_every_key_is_accepted_raw_or_signed_and_recorded_by_id(
    pool_upstream: MockUpstream,
) -> None:
    assert post(
        pool_upstream.base_url,
        body(stream=False),
        token="first.secret-one-long-enough-for-hs256-keys",
    ).is_success
    assert post(
        pool_upstream.base_url,
        body(stream=False),
        token=sign("second", "secret-two-long-enough-for-hs256-keys"),
    ).is_success
    # A token signed with one key's secret but naming another key is refused.
    wrong = post(
        pool_upstream.base_url,
        body(stream=False),
        token=sign("second", "secret-one-long-enough-for-hs256-keys"),
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "1002"

    assert [r["key_id"] for r in pool_upstream.requests()] == ["first", "second", None]


@pytest.mark.parametrize(
    ("fault", "status", "code", "retry_after"),
    [
        ("invalid", 401, "1002", None),
        ("balance", 429, "1113", None),
        ("rate_limit", 429, "1302", "7"),
    ],
)
def test_a_key_can_be_made_invalid_out_of_balance_or_rate_limited_and_served_again(
    pool_upstream: MockUpstream, fault: str, status: int, code: str, retry_after: str | None
) -> None:
    pool_upstream.set_key_fault("first", fault)
    refused = post(
        pool_upstream.base_url, body(), token=sign("first", "secret-one-long-enough-for-hs256-keys")
    )
    served = post(
        pool_upstream.base_url,
        body(stream=False),
        token="second.secret-two-long-enough-for-hs256-keys",
    )

    assert refused.status_code == status and refused.json()["error"]["code"] == code
    assert refused.headers.get("retry-after") == retry_after
    assert served.is_success
    pool_upstream.set_key_fault("first", None)
    assert post(
        pool_upstream.base_url,
        body(stream=False),
        token="first.secret-one-long-enough-for-hs256-keys",
    ).is_success


def test_a_key_fault_given_at_start_applies_from_the_first_request(
    pool_upstream: MockUpstream,
) -> None:
    refused = post(
        pool_upstream.base_url, body(), token="third.secret-three-long-enough-for-hs256-keys"
    )
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "1113"
    assert pool_upstream.requests()[-1]["key_id"] == "third"
