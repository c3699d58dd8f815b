"""Several keys end to end: the ``make run`` stack with four keys in its Zhipu secret, the fake
upstream answering one as invalid, one as out of balance, one as rate limited. Every request is
answered, the dead keys are sidelined (the fake's per-key request counts prove it), their
cool-off ends, and the sidelining is logged once, by fingerprint only."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devtools.stack import DevStack
from glm_relay.upstream.keys import ApiKey
from tests.hardening.support import sibling_stack
from tests.support.sse_client import read_stream

KEYS = {"bad": "bad.secret1", "broke": "broke.secret2", "busy": "busy.secret3", "good": "good.s4"}
COOLOFF_SECONDS = 3.0


@pytest.fixture(scope="module")
def pool_stack(stack: DevStack) -> Iterator[DevStack]:
    """The function with four keys in its Zhipu secret (as `make run` stores
    ZHIPU_API_KEY=a.b,c.d,...), beside the session's stack in the same moto."""
    with sibling_stack(
        stack,
        api_key=",".join(KEYS.values()),
        settings_overrides={"key_cooloff_seconds": COOLOFF_SECONDS},
        mock_args=[
            *("--key-fault", "bad=invalid"),
            *("--key-fault", "broke=balance"),
            *("--key-fault", "busy=rate_limit"),
            *("--retry-after", "30"),
        ],
    ) as running:
        yield running


def ask(stack: DevStack, client: httpx.Client, question: str) -> str:
    url = f"{stack.url}/chat?q={question}&access_token={stack.token}"
    result = read_stream(client, "GET", url)
    assert result.status == 200
    return result.names[-1]


def per_key(stack: DevStack, client: httpx.Client) -> Counter[str]:
    assert stack.upstream is not None
    records = client.get(f"{stack.upstream.origin}/_mock/requests").json()["requests"]
    return Counter(record["key_id"] for record in records)


class Lines:
    """The container's log lines as they are written (message and fields, as JSON text)."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def info(self, message: str, extra: dict[str, Any]) -> None:
        self.lines.append(json.dumps({"message": message, **extra}))

    warning = info


def test_every_request_is_answered_and_dead_keys_rest_until_their_cool_off_ends(
    pool_stack: DevStack,
) -> None:
    assert pool_stack.upstream is not None and pool_stack.app is not None
    log = Lines()
    pool_stack.app.telemetry._logger = log
    origin = pool_stack.upstream.origin
    with httpx.Client(timeout=30) as client:
        client.delete(f"{origin}/_mock/requests")
        # Keys are drawn at random: over 40 requests each is drawn at least once (all but
        # certainly: a chance below one in 10^4 that one is never drawn).
        started = time.monotonic()
        endings = [ask(pool_stack, client, f"Hello {n}") for n in range(40)]
        # On a busy machine the forty requests may outlast a cool-off: each one ended lets the
        # dead keys be asked once more.
        cooloffs = 1 + int((time.monotonic() - started) / COOLOFF_SECONDS)

        assert endings == ["done"] * 40
        counts = per_key(pool_stack, client)
        assert counts["good"] == 40
        # A dead key is asked once (an invalid one once more, after the secret is read again in
        # case it was rotated), then never again during its cool-off; the rate-limited key
        # rests for its Retry-After (30 s) after its first 429.
        assert counts["busy"] == 1
        assert 2 <= counts["bad"] <= 2 * cooloffs and counts["bad"] % 2 == 0
        assert 1 <= counts["broke"] <= cooloffs

        logged = "\n".join(log.lines)
        sidelined = [line for line in logged.splitlines() if "upstream key sidelined" in line]
        assert len(sidelined) == counts["bad"] // 2 + counts["broke"]
        for key_id in ("bad", "broke"):
            assert any(ApiKey.of(KEYS[key_id]).fingerprint in line for line in sidelined)
        for key in KEYS.values():
            assert key not in logged and key.partition(".")[2] not in logged

        # The operator fixes both accounts; once the cool-off is over the keys serve again.
        for key_id in ("bad", "broke"):
            client.put(f"{origin}/_mock/keys/{key_id}", json={"fault": None}).raise_for_status()
        time.sleep(COOLOFF_SECONDS + 0.2)
        client.delete(f"{origin}/_mock/requests")
        endings = [ask(pool_stack, client, f"Again {n}") for n in range(30)]

        assert endings == ["done"] * 30
        counts = per_key(pool_stack, client)
        assert counts["bad"] > 0 and counts["broke"] > 0 and counts["busy"] == 0
        assert counts["bad"] + counts["broke"] + counts["good"] == 30
