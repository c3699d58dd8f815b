"""glm_relay.jws: HS256 with the standard library, interoperating with PyJWT both ways."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import jwt
import pytest
from access_support import NOW, SIGNING_KEY, hs256, segment

from glm_relay import jws
from glm_relay.access import mint_access_token, verify_access_token
from glm_relay.upstream.credentials import ApiKey, CredentialStore

PACKAGE_ROOT = Path(__file__).resolve().parents[2] / "functions" / "relay"
PAYLOADS: list[dict[str, Any]] = [
    {"iss": "glm-relay", "sub": "alice", "iat": NOW, "exp": NOW + 60},
    {"sub": "ünïcode ✓", "exp": NOW + 0.5, "limits": {"max_tokens": 7}, "list": [1, None, True]},
    {},
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_tokens_are_byte_for_byte_what_pyjwt_writes(payload):
    assert jws.encode_hs256(payload, SIGNING_KEY) == jwt.encode(payload, SIGNING_KEY, "HS256")
    extra = {"sign_type": "SIGN", "kid": "k1"}
    assert jws.encode_hs256(payload, SIGNING_KEY, headers=extra) == jwt.encode(
        payload, SIGNING_KEY, "HS256", headers=extra
    )


@pytest.mark.parametrize("payload", PAYLOADS)
def test_pyjwt_tokens_decode_here_and_ours_decode_in_pyjwt(payload):
    theirs = jwt.encode(payload, SIGNING_KEY, algorithm="HS256", headers={"kid": "k"})
    ours = jws.encode_hs256(payload, SIGNING_KEY)
    options = {"verify_exp": False, "verify_iat": False, "verify_sub": False}

    assert jws.decode_hs256(theirs, SIGNING_KEY) == payload
    assert jwt.decode(ours, SIGNING_KEY, algorithms=["HS256"], options=options) == payload


def test_relay_tokens_interoperate_with_pyjwt_both_ways():
    minted = mint_access_token("alice", 600, SIGNING_KEY, now=NOW)
    options = {"verify_exp": False, "verify_iat": False}
    decoded = jwt.decode(minted, SIGNING_KEY, algorithms=["HS256"], options=options)
    assert decoded == {"iss": "glm-relay", "sub": "alice", "iat": NOW, "exp": NOW + 600}

    foreign = jwt.encode({"iss": "glm-relay", "sub": "bob", "exp": NOW + 60}, SIGNING_KEY)
    assert verify_access_token(foreign, SIGNING_KEY, now=NOW).sub == "bob"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_zhipu_jwt_is_what_pyjwt_would_sign():
    store = CredentialStore(source=None, clock=lambda: 1_700_000_000.25)  # type: ignore[arg-type]
    header, _ = store._sign(ApiKey("devid", "devsecret"))
    token = header.removeprefix("Bearer ")

    assert jwt.get_unverified_header(token) == {"alg": "HS256", "sign_type": "SIGN", "typ": "JWT"}
    claims = {"api_key": "devid", "exp": 1_700_003_600_250, "timestamp": 1_700_000_000_250}
    assert jwt.decode(token, "devsecret", algorithms=["HS256"], options={"verify_exp": False}) == (
        claims
    )
    with pytest.warns(jwt.warnings.InsecureKeyLengthWarning):  # Zhipu's secret is short
        expected = jwt.encode(claims, "devsecret", algorithm="HS256", headers={"sign_type": "SIGN"})
    assert token == expected


@pytest.mark.parametrize(
    "header",
    [{"alg": "none"}, {"alg": "HS384"}, {"alg": "RS256"}, {"alg": "hs256"}, {}, {"alg": None}],
)
def test_only_hs256_is_accepted(header):
    forged = f"{segment(header)}.{segment({'sub': 'x'})}"
    with pytest.raises(jws.AlgorithmNotAllowed):
        jws.decode_hs256(f"{forged}.{hs256(forged)}", SIGNING_KEY)


@pytest.mark.parametrize("extra", [{"crit": ["exp"]}, {"b64": False}, {"b64": True}])
def test_extension_headers_are_refused(extra):
    forged = f"{segment({'alg': 'HS256', **extra})}.{segment({'sub': 'x'})}"
    with pytest.raises(jws.MalformedToken):
        jws.decode_hs256(f"{forged}.{hs256(forged)}", SIGNING_KEY)


@pytest.mark.parametrize(
    "token",
    ["a.b", "a.b.c.d", ".e30.", "e30..", "e30.e30.x", "e30=.e30.", "e3+.e30.", 7, "W10.e30."],
)
def test_malformed_tokens(token):
    with pytest.raises(jws.MalformedToken):
        jws.decode_hs256(token, SIGNING_KEY)


def test_a_wrong_or_truncated_signature_is_a_bad_signature():
    token = jws.encode_hs256({"sub": "x"}, SIGNING_KEY)
    with pytest.raises(jws.BadSignature):
        jws.decode_hs256(token, SIGNING_KEY + "x")
    with pytest.raises(jws.BadSignature):
        jws.decode_hs256(token[:-3], SIGNING_KEY)


def test_the_signature_is_compared_in_constant_time(monkeypatch):
    compared: list[tuple[bytes, bytes]] = []
    real = jws.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(jws.hmac, "compare_digest", spy)
    jws.decode_hs256(jws.encode_hs256({"sub": "x"}, SIGNING_KEY), SIGNING_KEY)
    assert len(compared) == 1


def test_the_payload_of_a_badly_signed_token_is_never_parsed():
    forged = f"{segment({'alg': 'HS256'})}.{segment('{not json')}"
    with pytest.raises(jws.BadSignature):
        jws.decode_hs256(f"{forged}.{hs256(forged, 'another-key-that-is-long-enough!')}", "k" * 32)


@pytest.mark.parametrize(
    "key", ["ssh-rsa AAAAB3NzaC1yc2E" + "A" * 40, "x\n-----BEGIN PUBLIC KEY-----\n" + "A" * 40]
)
def test_public_keys_are_refused_as_signing_keys(key):
    with pytest.raises(ValueError, match="PEM"):
        mint_access_token("alice", 60, key)


def test_a_relay_without_a_provider_never_loads_pyjwt_or_cryptography():
    code = """
import asyncio, sys, types
from glm_relay.config import Settings
from glm_relay.web.app import WebApp
from glm_relay.access import mint_access_token
from glm_relay.upstream.credentials import ApiKey, CredentialStore

key = "k" * 40
app = WebApp(Settings.from_env({}, access_token_secret=key))
request = types.SimpleNamespace(
    headers={"authorization": "Bearer " + mint_access_token("alice", 60, key)}, query={}
)
claims = asyncio.run(app.guard.authenticate(request))
assert claims is not None and claims.sub == "alice", claims
CredentialStore(source=None)._sign(ApiKey("id", "secret"))
loaded = {"jwt", "cryptography"} & {name.split(".")[0] for name in sys.modules}
assert not loaded, loaded
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE_ROOT)
