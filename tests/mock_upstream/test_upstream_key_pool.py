"""Several keys of one account: each accepted, each recorded, each able to be made invalid, out of
balance or rate limited, from the command line's options or at run time."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from upstream_support import body, post, sign

from mock_upstream.testing import MockUpstream, running_mock_upstream

SECRETS = {name: f"secret-{name}-long-enough-for-hs256-keys" for name in ("one", "two", "three")}
FIRST, SECOND, THIRD = (
    f"{key_id}.{SECRETS[n]}"
    for key_id, n in (("first", "one"), ("second", "two"), ("third", "three"))
)


@pytest.fixture
def pool_upstream() -> Iterator[MockUpstream]:
    keys = ",".join((FIRST, SECOND, THIRD))
    with running_mock_upstream(api_key=keys, retry_after=7, key_faults={"third": "balance"}) as up:
        yield up


def ask(upstream: MockUpstream, token: str, *, stream: bool = False) -> httpx.Response:
    return post(upstream.base_url, body(stream=stream), token=token)


def test_every_key_is_accepted_raw_or_signed_and_recorded_by_id(
    pool_upstream: MockUpstream,
) -> None:
    assert ask(pool_upstream, FIRST).is_success
    assert ask(pool_upstream, sign("second", SECRETS["two"])).is_success
    # A token signed with one key's secret but naming another key is refused.
    wrong = ask(pool_upstream, sign("second", SECRETS["one"]))
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
    refused = ask(pool_upstream, sign("first", SECRETS["one"]), stream=True)

    assert refused.status_code == status and refused.json()["error"]["code"] == code
    assert refused.headers.get("retry-after") == retry_after
    assert ask(pool_upstream, SECOND).is_success
    pool_upstream.set_key_fault("first", None)
    assert ask(pool_upstream, FIRST).is_success


def test_a_key_fault_given_at_start_applies_from_the_first_request(
    pool_upstream: MockUpstream,
) -> None:
    refused = ask(pool_upstream, THIRD, stream=True)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "1113"
    assert pool_upstream.requests()[-1]["key_id"] == "third"
