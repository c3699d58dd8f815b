"""The key pool: the secret's format, the keys' health on an injected clock, and the client's
choice of key against ``httpx.MockTransport`` (what each key was sent, and when)."""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from glm_relay.chat.request import ChatRequest
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.upstream import CredentialStore, KeyHealth, PoolKey, ZhipuClient, parse_key_pool
from glm_relay.upstream.keys import ApiKey

CHAT = ChatRequest(model="glm-4.7", messages=[{"role": "user", "content": "Hi"}], max_tokens=64)
OK_BODY = b'data: {"id":"u","choices":[{"index":0,"delta":{"content":"ok"}}]}\n\ndata: [DONE]\n\n'


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def pool_key(text: str, weight: float = 1.0, **kwargs: object) -> PoolKey:
    return PoolKey(ApiKey.of(text), weight=weight, **kwargs)  # type: ignore[arg-type]


# --- the secret's format ---------------------------------------------------------------------


def test_one_key_plain_or_as_json_is_a_pool_of_one() -> None:
    for raw in ("a.b", ' {"api_key": "a.b"} '):
        (key,) = parse_key_pool(raw)
        assert (key.key.id, key.base_url, key.weight, key.models) == ("a", "", 1.0, ())


def test_several_keys_with_base_url_weight_and_models() -> None:
    raw = json.dumps(
        {
            "keys": [
                "a.b",
                {
                    "api_key": "c.d",
                    "base_url": "https://api.z.ai/api/paas/v4/",
                    "weight": 3,
                    "models": ["glm-5"],
                },
            ]
        }
    )
    first, second = parse_key_pool(raw)
    assert first.key == ApiKey("a", "b")
    assert second.base_url == "https://api.z.ai/api/paas/v4"
    assert second.weight == 3.0 and second.serves("glm-5") and not second.serves("glm-4.7")
    assert parse_key_pool('["a.b", "c.d"]')[1].key.id == "c"


@pytest.mark.parametrize(
    "raw",
    [
        '{"keys": []}',
        '{"keys": [{"api_key": "a.b", "weight": 0}]}',
        '{"keys": [{"api_key": "a.b", "base_url": "ftp://x"}]}',
        '{"keys": [{"api_key": "a.b", "models": "glm-5"}]}',
        '{"keys": [{"api_key": "a.b", "colour": "red"}]}',
        '{"keys": ["a.b", "no-dot-secretvalue"]}',
        '{"keys": [',
        "a.b,c.d",
    ],
)
def test_a_malformed_pool_is_a_configuration_error_that_never_repeats_the_value(raw: str) -> None:
    with pytest.raises(RelayError) as raised:
        parse_key_pool(raw)
    assert raised.value.code is ErrorCode.CONFIGURATION_ERROR
    assert "secretvalue" not in raised.value.message and "a.b" not in raised.value.message


def test_a_fingerprint_names_a_key_without_any_part_of_it() -> None:
    key = ApiKey("myid", "mysecret")
    assert key.fingerprint.startswith("key-") and len(key.fingerprint) == 16
    assert "myid" not in key.fingerprint and "mysecret" not in repr(key)
    assert ApiKey("myid", "other").fingerprint != key.fingerprint


# --- health ---------------------------------------------------------------------------------


def test_a_sidelined_key_gets_nothing_until_its_cool_off_ends_and_is_told_once() -> None:
    clock, told = Clock(), []
    health = KeyHealth(
        cooloff_seconds=60, clock=clock, on_sidelined=lambda *args: told.append(args)
    )
    dead, alive = pool_key("dead.s"), pool_key("alive.s")

    health.sideline(dead, "invalid")
    health.sideline(dead, "invalid")  # a second request met the same refusal
    assert [health.choose([dead, alive]) for _ in range(20)] == [alive] * 20
    assert told == [(dead.fingerprint, "invalid", 60)]
    assert health.retry_after([dead]) == 60 and health.sidelined_count([dead, alive]) == 1

    clock.now += 59.9
    assert health.choose([dead]) is None
    clock.now += 0.1
    assert health.choose([dead]) is dead and health.sidelined_count([dead, alive]) == 0
    health.sideline(dead, "out_of_balance")  # a new sidelining is told again
    assert len(told) == 2


def test_a_throttled_key_takes_requests_only_when_no_other_key_can() -> None:
    clock = Clock()
    health = KeyHealth(cooloff_seconds=60, clock=clock)
    busy, free = pool_key("busy.s"), pool_key("free.s")

    health.throttle(busy, 5)
    assert {health.choose([busy, free]) for _ in range(20)} == {free}
    assert health.choose([busy, free], exclude={free.fingerprint}) is busy
    clock.now += 5
    assert {health.choose([busy, free]) for _ in range(50)} == {busy, free}


def test_requests_spread_over_healthy_keys_by_weight() -> None:
    health = KeyHealth(cooloff_seconds=60, clock=Clock(), rng=random.Random(7))
    light, heavy = pool_key("light.s", 1), pool_key("heavy.s", 3)

    counts = Counter(health.choose([light, heavy]).key.id for _ in range(4000))  # type: ignore[union-attr]

    assert 0.70 < counts["heavy"] / 4000 < 0.80


# --- the client -----------------------------------------------------------------------------


class Source:
    def __init__(self, value: str) -> None:
        self.value = value
        self.reads: list[bool] = []

    async def fetch(self, *, force: bool = False) -> str:
        self.reads.append(force)
        return self.value


def refusal(status: int, code: str, retry_after: str | None = None) -> httpx.Response:
    headers = {"Retry-After": retry_after} if retry_after else {}
    return httpx.Response(status, headers=headers, json={"error": {"code": code, "message": "x"}})


class Pool:
    """A client over a pool whose keys Zhipu answers as ``behaviour`` says (by key id)."""

    def __init__(
        self,
        secret: object,
        behaviour: dict[str, Callable[[], httpx.Response]],
        **settings: object,
    ) -> None:
        self.sent: list[tuple[str, str]] = []  # (key id, URL)
        self.sleeps: list[float] = []
        self.told: list[tuple[str, str, float]] = []
        self.clock = Clock()
        self.source = Source(json.dumps(secret))

        def handler(request: httpx.Request) -> httpx.Response:
            key_id = request.headers["authorization"].removeprefix("Bearer ").partition(".")[0]
            self.sent.append((key_id, str(request.url)))
            make = behaviour.get(key_id)
            return make() if make else httpx.Response(200, stream=httpx.ByteStream(OK_BODY))

        async def sleep(seconds: float) -> None:
            self.sleeps.append(seconds)
            self.clock.now += seconds

        self.health = KeyHealth(
            cooloff_seconds=30,
            clock=self.clock,
            rng=random.Random(1),
            on_sidelined=lambda *told: self.told.append(told),
        )
        self.client = ZhipuClient(
            Settings.from_env({}, zhipu_base_url="https://default.test/v4", **settings),
            CredentialStore(self.source, mode="raw", clock=self.clock),
            transport=httpx.MockTransport(handler),
            sleep=sleep,
            clock=self.clock,
            health=self.health,
        )

    async def ask(self, chat: ChatRequest = CHAT) -> str:
        await self.client.open_stream(chat, request_id="r", deadline=self.clock.now + 30)
        return self.sent[-1][0]

    def count(self, key_id: str) -> int:
        return sum(1 for sent_to, _ in self.sent if sent_to == key_id)


async def test_dead_keys_are_sidelined_and_every_request_is_answered_by_the_live_one() -> None:
    pool = Pool(
        {"keys": ["bad.s", "broke.s", "busy.s", "good.s"]},
        {
            "bad": lambda: refusal(401, "1002"),
            "broke": lambda: refusal(429, "1113"),
            "busy": lambda: refusal(429, "1302", retry_after="20"),
        },
    )

    answered = [await pool.ask() for _ in range(30)]

    assert answered == ["good"] * 30
    # bad: once, and once more after the secret was read again (a rotation); broke and busy once
    assert (pool.count("bad"), pool.count("broke"), pool.count("busy")) == (2, 1, 1)
    assert pool.sleeps == []  # moving to another key waits for nothing
    assert sorted(reason for _, reason, _ in pool.told) == ["invalid", "out_of_balance"]
    assert pool.source.reads == [False, True]

    pool.clock.now += 30  # the cool-off and the Retry-After are over: the keys are tried again
    for _ in range(30):
        await pool.ask()
    assert (pool.count("bad"), pool.count("broke"), pool.count("busy")) == (4, 2, 2)
    assert len(pool.told) == 4


async def test_with_every_key_sidelined_the_answer_is_upstream_unavailable_with_retry_after() -> (
    None
):
    pool = Pool(
        {"keys": ["a.s", "b.s"]},
        {"a": lambda: refusal(401, "1000"), "b": lambda: refusal(429, "1113")},
    )

    with pytest.raises(RelayError) as first:
        await pool.ask()
    assert first.value.code in {ErrorCode.UPSTREAM_AUTH_FAILED, ErrorCode.INSUFFICIENT_BALANCE}

    pool.clock.now += 12
    sent = len(pool.sent)
    with pytest.raises(RelayError) as later:
        await pool.ask()
    assert later.value.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert later.value.response_headers()["Retry-After"] == "18"
    assert len(pool.sent) == sent  # nothing reached the upstream
    assert pool.source.reads[-1] is True  # the secret was read again, in case it holds new keys


async def test_a_pool_of_one_is_never_sidelined() -> None:
    pool = Pool({"keys": ["only.s"]}, {"only": lambda: refusal(429, "1113")})
    for _ in range(3):
        with pytest.raises(RelayError) as raised:
            await pool.ask()
        assert raised.value.code is ErrorCode.INSUFFICIENT_BALANCE
    assert pool.count("only") == 3 and pool.told == []


async def test_a_rate_limited_key_hands_the_retry_to_another_key_within_the_budget() -> None:
    pool = Pool(
        {"keys": ["x.s", "y.s"]},
        {"x": lambda: refusal(429, "1302", "3"), "y": lambda: refusal(429, "1303", "3")},
        retry_attempts=3,
    )
    with pytest.raises(RelayError) as raised:
        await pool.ask()
    assert raised.value.code is ErrorCode.RATE_LIMITED
    assert len(pool.sent) == 3  # the retry budget holds across keys
    assert {key for key, _ in pool.sent[:2]} == {"x", "y"}
    assert pool.sleeps == [3.0]  # the first retry went to the other key at once


async def test_each_key_goes_to_its_own_base_url_and_only_for_its_models() -> None:
    pool = Pool(
        {
            "keys": [
                {"api_key": "cn.s", "models": ["glm-4.7"]},
                {
                    "api_key": "intl.s",
                    "base_url": "https://api.z.ai/api/paas/v4",
                    "models": ["glm-5"],
                },
            ]
        },
        {},
    )
    assert await pool.ask() == "cn"
    assert (
        await pool.ask(ChatRequest(model="glm-5", messages=CHAT.messages, max_tokens=64)) == "intl"
    )
    assert [url for _, url in pool.sent] == [
        "https://default.test/v4/chat/completions",
        "https://api.z.ai/api/paas/v4/chat/completions",
    ]
    with pytest.raises(RelayError) as raised:
        await pool.ask(ChatRequest(model="glm-4.6", messages=CHAT.messages, max_tokens=64))
    assert raised.value.code is ErrorCode.MODEL_NOT_ALLOWED


async def test_a_jwt_is_signed_and_cached_per_key() -> None:
    clock = Clock()
    store = CredentialStore(Source('{"keys": ["a.sa", "b.sb"]}'), clock=clock)
    a, b = await store.keys()
    first_a, first_b = await store.authorization(a), await store.authorization(b)

    assert first_a != first_b
    assert await store.authorization(a) == first_a and await store.authorization(b) == first_b
    clock.now += 3600
    assert await store.authorization(a) != first_a  # renewed near its expiry


def test_make_run_stores_comma_separated_keys_as_a_pool() -> None:
    from devtools.stack import zhipu_secret

    assert zhipu_secret("a.b") == "a.b"
    pool = parse_key_pool(zhipu_secret("a.b, c.d"))
    assert [k.key for k in pool] == [ApiKey("a", "b"), ApiKey("c", "d")]
