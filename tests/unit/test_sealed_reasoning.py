"""Sealed reasoning: what the relay seals it reads back; anything else opens to None."""

from __future__ import annotations

import hashlib
import hmac
import zlib

import pytest

from glm_relay.chat.sealed import KEY_LABEL, ReasoningSeal, SealedReasoning
from glm_relay.jws import b64url_encode
from glm_relay.secrets import CachedSecretSource
from glm_relay.upstream.credentials import CredentialStore

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
REASONING = "The user wants the weather in Paris; call get_weather. ünïcode ✓ 思考"


def test_a_sealed_reasoning_opens_to_its_model_and_text():
    seal = ReasoningSeal(KEY)
    token = seal.seal("glm-5.1", REASONING)

    assert token.startswith("glmr1.")
    assert REASONING not in token
    assert seal.open(token) == SealedReasoning("glm-5.1", REASONING)
    assert seal.open(seal.seal("glm-4.6", "")) == SealedReasoning("glm-4.6", "")


def test_long_reasoning_is_compressed():
    text = "Step by step, the answer follows from the tool's result. " * 400
    token = ReasoningSeal(KEY).seal("glm-5.1", text)
    assert len(token) < len(text) // 4


def _tampered(token: str) -> list[str]:
    version, payload, mac = token.split(".")
    flipped = payload[:-3] + ("A" if payload[-3] != "A" else "B") + payload[-2:]
    return [
        f"{version}.{flipped}.{mac}",
        f"{version}.{payload}.{mac[:-2]}",
        f"{version}.{payload}",
        f"glmr2.{payload}.{mac}",
        f"{version}.{payload}.{mac}.",
        token + "x",
        "",
        "glmr1..",
        "not a seal",
    ]


def test_a_changed_truncated_or_foreign_seal_opens_to_none():
    seal = ReasoningSeal(KEY)
    token = seal.seal("glm-5.1", REASONING)
    for bad in _tampered(token):
        assert seal.open(bad) is None, bad
    assert ReasoningSeal(OTHER_KEY).open(token) is None
    for value in (None, 12, ["glmr1"], {"m": "glm-5.1"}):
        assert seal.open(value) is None


def _forged(payload_bytes: bytes, key: bytes = KEY) -> str:
    """A seal made with the right key around a payload the relay never writes."""
    payload = b64url_encode(payload_bytes)
    mac = hmac.new(key, f"glmr1.{payload}".encode(), hashlib.sha256).digest()
    return f"glmr1.{payload}.{b64url_encode(mac)}"


@pytest.mark.parametrize(
    "payload",
    [
        b"not zlib",
        zlib.compress(b"not json"),
        zlib.compress(b"[1, 2]"),
        zlib.compress(b'{"m": "glm-5.1"}'),
        zlib.compress(b'{"m": 5, "r": "x"}'),
        zlib.compress(b'{"m": "glm-5.1", "r": "x"}')[:-4],
        zlib.compress(b'{"m": "glm-5.1", "r": "x"}') + b"trailing",
    ],
)
def test_a_well_signed_but_malformed_payload_opens_to_none(payload):
    assert ReasoningSeal(KEY).open(_forged(payload)) is None


def test_a_decompression_bomb_opens_to_none():
    bomb = zlib.compress(b'{"m":"glm-5.1","r":"' + b"a" * 20_000_000 + b'"}', 9)
    assert ReasoningSeal(KEY).open(_forged(bomb)) is None


def test_the_key_is_never_shown_and_must_be_long_enough():
    seal = ReasoningSeal(KEY)
    assert KEY.hex() not in repr(seal) and str(KEY) not in repr(seal)
    with pytest.raises(ValueError):
        ReasoningSeal(b"short")


class _Stored(CachedSecretSource):
    def __init__(self, value: str) -> None:
        super().__init__("glm-relay/zhipu", max_age_seconds=900)
        self.value = value

    async def _read(self, force: bool) -> str:
        return self.value


async def test_the_key_derives_from_the_zhipu_secret_half_under_a_fixed_label():
    store = CredentialStore(_Stored("key-id.the-secret-half"))
    derived = await store.derive_key(KEY_LABEL)

    assert derived == hmac.new(b"the-secret-half", KEY_LABEL, hashlib.sha256).digest()
    assert derived != await store.derive_key(b"another use")
    rotated = CredentialStore(_Stored("key-id.a-new-secret"))
    token = ReasoningSeal(derived).seal("glm-5.1", REASONING)
    assert ReasoningSeal(await rotated.derive_key(KEY_LABEL)).open(token) is None


def test_one_seal_per_key_and_a_new_key_replaces_it() -> None:
    from glm_relay.chat.sealed import seal_for_key

    first = seal_for_key(b"a" * 32)
    assert seal_for_key(b"a" * 32) is first
    token = first.seal("glm-5.1", "why")
    rotated = seal_for_key(b"b" * 32)
    assert rotated is not first and rotated.open(token) is None
