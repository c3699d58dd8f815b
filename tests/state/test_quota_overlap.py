"""The quota and the upstream request overlap: what an admitted and a refused request look like
from both ends, through the local function URL, with DynamoDB in moto answering slowly; and the
same with the overlap turned off (``QUOTA_OVERLAP=false``)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.local_url import running_local_url
from devtools.stack import DEV_ACCESS_TOKEN_SECRET, DevStack
from glm_relay.access import TokenLimits, mint_access_token
from glm_relay.config import Settings
from glm_relay.web.app import WebApp

pytestmark = pytest.mark.usefixtures("upstream_log")

QUOTA_DELAY_S = 0.4


@pytest.fixture
def slow_quota(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Every ``UpdateItem`` (the quota's reservation) answers ``QUOTA_DELAY_S`` late; yields the
    times at which each one answered."""
    from moto.dynamodb.models import DynamoDBBackend

    original = DynamoDBBackend.update_item
    answered: list[float] = []
    lock = threading.Lock()

    def late(*args: Any, **kwargs: Any) -> Any:
        time.sleep(QUOTA_DELAY_S)
        try:
            return original(*args, **kwargs)
        finally:
            with lock:
                answered.append(time.time())

    monkeypatch.setattr(DynamoDBBackend, "update_item", late)
    yield answered


def upstream_records(stack: DevStack, client: httpx.Client) -> list[dict[str, Any]]:
    assert stack.upstream is not None
    records: list[dict[str, Any]] = client.get(f"{stack.upstream.origin}/_mock/requests").json()[
        "requests"
    ]
    return records


def wait_until_ended(stack: DevStack, client: httpx.Client) -> list[dict[str, Any]]:
    """The upstream's log once every request in it has ended (a close is noticed a moment late)."""
    deadline = time.monotonic() + 5
    while True:
        records = upstream_records(stack, client)
        if all(r["ended"] is not None for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.02)


def ask(
    stack: DevStack, client: httpx.Client, token: str, question: str, *, url: str = ""
) -> httpx.Response:
    return client.post(
        f"{url or stack.url}/chat",
        json={"messages": [{"role": "user", "content": question}]},
        headers={"Authorization": f"Bearer {token}", "Accept": "text/event-stream"},
    )


def test_the_upstream_request_is_under_way_before_the_quota_answers(
    stack: DevStack, client: httpx.Client, slow_quota: list[float]
) -> None:
    token = mint_access_token("overlap-yes", 600, DEV_ACCESS_TOKEN_SECRET)
    sent = time.time()

    answer = ask(stack, client, token, "Overlap me #chunks=2")

    assert answer.status_code == 200 and "event: done" in answer.text
    (record,) = wait_until_ended(stack, client)
    assert record["outcome"] == "completed"
    # The upstream had the request long before the reservation's answer came back...
    assert record["time"] < slow_quota[0] - QUOTA_DELAY_S / 2
    # ...and the answer still took no longer than the quota alone (one wait, not two in a row).
    assert slow_quota[0] - sent >= QUOTA_DELAY_S


def test_an_over_quota_request_closes_its_upstream_request_and_gets_429(
    stack: DevStack, client: httpx.Client, slow_quota: list[float]
) -> None:
    token = mint_access_token(
        "overlap-no", 600, DEV_ACCESS_TOKEN_SECRET, limits=TokenLimits(requests_per_day=1)
    )
    assert ask(stack, client, token, "The one allowed #chunks=1").status_code == 200
    client.delete(f"{stack.upstream.origin}/_mock/requests")  # type: ignore[union-attr]
    started = time.monotonic()

    refused = ask(stack, client, token, "One too many #first=5000 #chunks=3")

    elapsed = time.monotonic() - started
    assert refused.status_code == 429
    assert refused.headers["content-type"].startswith("application/json")
    assert refused.json()["error"]["code"] == "quota_exceeded"
    assert "Retry-After" in refused.headers
    assert elapsed < 3, "the refusal waited for the upstream"
    (record,) = wait_until_ended(stack, client)
    assert record["body"]["messages"][-1]["content"] == "One too many #first=5000 #chunks=3"
    assert (record["outcome"], record["client_gone"], record["chunks_sent"]) == (
        "client_gone",
        True,
        0,
    )
    assert record["time"] < slow_quota[-1]  # it reached the upstream before the refusal
    assert record["ended"] >= slow_quota[-1]  # and was closed because of it


@pytest.fixture(scope="module")
def strict_url(stack: DevStack) -> Iterator[str]:
    """A second container of the stack's function, configured from its environment as on Lambda,
    with ``QUOTA_OVERLAP=false``: the quota decides before the upstream request is sent."""
    environ = {
        **os.environ,
        **stack.runtime_env(),
        "REQUIRE_ACCESS_TOKEN": "true",
        "QUOTA_OVERLAP": "false",
    }
    settings = Settings.from_env(environ)
    assert settings.quota_overlap is False
    with running_local_url(WebApp(settings).handle, stack.url_config()) as url:
        yield url


def test_without_overlap_the_upstream_request_waits_for_the_quota(
    stack: DevStack, client: httpx.Client, slow_quota: list[float], strict_url: str
) -> None:
    token = mint_access_token("strict-yes", 600, DEV_ACCESS_TOKEN_SECRET)

    answer = ask(stack, client, token, "Wait for me #chunks=2", url=strict_url)

    assert answer.status_code == 200 and "event: done" in answer.text
    (record,) = wait_until_ended(stack, client)
    assert record["outcome"] == "completed"
    assert record["time"] >= slow_quota[0]  # sent only once the reservation had answered


def test_without_overlap_an_over_quota_request_never_reaches_the_upstream(
    stack: DevStack, client: httpx.Client, strict_url: str
) -> None:
    token = mint_access_token(
        "strict-no", 600, DEV_ACCESS_TOKEN_SECRET, limits=TokenLimits(requests_per_day=1)
    )
    assert ask(stack, client, token, "The one allowed #chunks=1", url=strict_url).status_code == 200
    assert len(wait_until_ended(stack, client)) == 1
    client.delete(f"{stack.upstream.origin}/_mock/requests")  # type: ignore[union-attr]

    refused = [ask(stack, client, token, f"Too many {n}", url=strict_url) for n in range(3)]

    assert [r.status_code for r in refused] == [429, 429, 429]
    assert {r.json()["error"]["code"] for r in refused} == {"quota_exceeded"}
    time.sleep(0.2)  # a request on its way to the upstream would have arrived by now
    assert upstream_records(stack, client) == []
