"""Authentication exactly as Zhipu answers it: what a client sees for every kind of credential."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest
from upstream_support import API_KEY, HTTP, KEY_ID, KEY_SECRET, body, error_json, post, sign

from mock_upstream.testing import MockUpstream


def _b64(value: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


def test_signed_jwt_is_accepted_and_its_claims_are_recorded(upstream: MockUpstream) -> None:
    now = int(time.time() * 1000)
    response = post(upstream.base_url, body("hi", stream=False), token=sign(now_ms=now))

    assert response.status_code == 200
    record = upstream.requests()[-1]
    assert record["auth"] == "jwt"
    assert record["jwt_claims"] == {"api_key": KEY_ID, "exp": now + 210_000, "timestamp": now}
    assert record["jwt_header"]["sign_type"] == "SIGN"
    assert record["authorization"].startswith("Bearer ey")


def test_raw_api_key_as_bearer_is_accepted(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, body("hi", stream=False), token=API_KEY)

    assert response.status_code == 200
    assert upstream.requests()[-1]["auth"] == "api_key"
    assert upstream.requests()[-1]["jwt_claims"] is None


def test_token_without_bearer_scheme_is_accepted(upstream: MockUpstream) -> None:
    response = HTTP.post(
        upstream.base_url + "/chat/completions",
        json=body("hi", stream=False),
        headers={"Authorization": sign()},
    )
    assert response.status_code == 200


def _assert_401(response: httpx.Response, code: str, message: str) -> None:
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    assert response.content == error_json(code, message)


def test_missing_authorization_header_gets_1001(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, body(), token=None)
    _assert_401(response, "1001", "No Authorization header was received.")
    assert upstream.requests()[-1]["auth"] == "missing"


@pytest.mark.parametrize("value", ["Bearer", ""])
def test_empty_authorization_gets_1001(upstream: MockUpstream, value: str) -> None:
    response = HTTP.post(
        upstream.base_url + "/chat/completions", json=body(), headers={"Authorization": value}
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "1001"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (sign(secret="another-secret-another-secret-0123"), "The token signature does not match"),
        (sign(key_id="otherid"), "The token's api_key claim does not name this API key."),
        (sign(headers={"alg": "HS256"}), "The token header must carry alg HS256 and sign_type"),
        ("not-a-token", "The token is neither the API key nor a JWT."),
        ("a.b.c", "The token could not be decoded."),
        (f"{KEY_ID}.wrong-secret", "The token is neither the API key nor a JWT."),
        (
            sign(claims={"timestamp": "yesterday"}),
            "The token needs integer timestamp and exp claims in milliseconds.",
        ),
    ],
    ids=[
        "bad-signature",
        "wrong-key-id",
        "no-sign-type",
        "garbage",
        "bad-base64",
        "wrong-raw-key",
        "non-integer-timestamp",
    ],
)
def test_invalid_credentials_get_1002(upstream: MockUpstream, token: str, message: str) -> None:
    response = post(upstream.base_url, body(), token=token)

    assert response.status_code == 401
    error = response.json()["error"]
    assert error["code"] == "1002"
    assert error["message"].startswith(message)
    assert upstream.requests()[-1]["auth"] == "invalid"


def test_unsigned_jwt_with_alg_none_gets_1002(upstream: MockUpstream) -> None:
    now = int(time.time() * 1000)
    header = _b64({"alg": "none", "sign_type": "SIGN"})
    claims = _b64({"api_key": KEY_ID, "exp": now + 60_000, "timestamp": now})
    response = post(upstream.base_url, body(), token=f"{header}.{claims}.")
    assert response.json()["error"]["code"] == "1002"


def test_expired_token_gets_1003_and_its_claims_are_still_recorded(upstream: MockUpstream) -> None:
    now = int(time.time() * 1000)
    token = sign(now_ms=now - 300_000, ttl_ms=210_000)

    response = post(upstream.base_url, body(), token=token)

    _assert_401(response, "1003", "The token has expired; sign a new one.")
    assert upstream.requests()[-1]["jwt_claims"]["exp"] == now - 90_000


def test_exp_written_in_seconds_looks_expired(upstream: MockUpstream) -> None:
    # The classic mistake: seconds where Zhipu expects milliseconds.
    now_s = int(time.time())
    token = sign(claims={"timestamp": now_s, "exp": now_s + 210})

    response = post(upstream.base_url, body(), token=token)

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "1003"


def test_authentication_is_checked_before_the_body(upstream: MockUpstream) -> None:
    response = post(upstream.base_url, None, token=None, raw=b"not json")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "1001"


def test_rotated_key_is_accepted_and_the_old_one_refused(upstream: MockUpstream) -> None:
    new_key = "newid.fedcba9876543210fedcba9876543210"
    upstream.set_api_key(new_key)
    try:
        old = post(upstream.base_url, body(stream=False), token=sign())
        new = post(upstream.base_url, body(stream=False), token=sign("newid", new_key[6:]))
    finally:
        upstream.set_api_key(API_KEY)

    assert old.status_code == 401 and old.json()["error"]["code"] == "1002"
    assert new.status_code == 200
    assert post(upstream.base_url, body(stream=False), token=sign(KEY_ID, KEY_SECRET)).is_success
