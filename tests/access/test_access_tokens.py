"""verify_access_token / mint_access_token: what is accepted, and the exact reason for a refusal."""

from __future__ import annotations

import time

import jwt
import pytest
from access_support import NOW, SIGNING_KEY, hs256, segment
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from glm_relay.access import (
    MAX_TOKEN_BYTES,
    AccessClaims,
    AccessDenied,
    TokenLimits,
    mint_access_token,
    verify_access_token,
)


def denied(token: object, *, key: str = SIGNING_KEY, now: float = NOW, leeway: int = 0) -> str:
    """The refusal message, after checking it never echoes the token or the key."""
    with pytest.raises(AccessDenied) as caught:
        verify_access_token(token, key, now=now, leeway_seconds=leeway)  # type: ignore[arg-type]
    message = caught.value.message
    assert caught.value.code == "unauthorized"
    assert str(caught.value) == message
    assert SIGNING_KEY not in message and key not in message
    if isinstance(token, str) and len(token) > 8:
        assert token not in message
        for part in token.split("."):
            assert len(part) < 8 or part not in message
    return message


# --- accepted tokens ---------------------------------------------------------------------------


def test_minted_token_round_trips_with_limits():
    limits = TokenLimits(requests_per_day=100, tokens_per_day=50_000, max_tokens=1024)
    token = mint_access_token("alice", 3600, SIGNING_KEY, limits=limits, now=NOW)

    assert verify_access_token(token, SIGNING_KEY, now=NOW + 1) == AccessClaims(
        sub="alice", expires_at=NOW + 3600, limits=limits
    )


def test_minted_token_without_limits_grants_configured_defaults():
    token = mint_access_token("bob", 60, SIGNING_KEY, now=NOW)

    claims = verify_access_token(token, SIGNING_KEY, now=NOW)
    assert claims.limits == TokenLimits(None, None, None)
    assert "limits" not in jwt.decode(token, options={"verify_signature": False})


def test_partial_limits_leave_other_fields_unset():
    token = mint_access_token("carol", 60, SIGNING_KEY, limits=TokenLimits(max_tokens=1), now=NOW)

    assert verify_access_token(token, SIGNING_KEY, now=NOW).limits == TokenLimits(max_tokens=1)
    assert jwt.decode(token, options={"verify_signature": False})["limits"] == {"max_tokens": 1}


def test_spend_budgets_travel_in_the_limits_claim():
    limits = TokenLimits(spend_per_day=0.5, spend_per_month=12)
    token = mint_access_token("dora", 60, SIGNING_KEY, limits=limits, now=NOW)

    assert verify_access_token(token, SIGNING_KEY, now=NOW).limits == limits
    assert jwt.decode(token, options={"verify_signature": False})["limits"] == {
        "spend_per_day": 0.5,
        "spend_per_month": 12,
    }
    with pytest.raises(ValueError, match="spend_per_day"):
        mint_access_token("dora", 60, SIGNING_KEY, limits=TokenLimits(spend_per_day=-1))


def test_a_token_allowing_no_tokens_per_answer_is_refused_when_checked():
    # Such a token used to be accepted, then every request failed upstream with a 502.
    with pytest.raises(ValueError, match="max_tokens"):
        mint_access_token("ed", 60, SIGNING_KEY, limits=TokenLimits(max_tokens=0), now=NOW)
    payload = {"iss": "glm-relay", "sub": "ed", "exp": NOW + 60, "limits": {"max_tokens": 0}}
    token = jwt.encode(payload, SIGNING_KEY, algorithm="HS256")

    with pytest.raises(AccessDenied, match=r"limits\.max_tokens"):
        verify_access_token(token, SIGNING_KEY, now=NOW)


def test_minted_token_carries_issuer_subject_and_times():
    token = mint_access_token("alice", 600, SIGNING_KEY, now=NOW + 0.9)

    payload = jwt.decode(
        token, SIGNING_KEY, algorithms=["HS256"], options={"verify_exp": False, "verify_iat": False}
    )
    assert payload == {"iss": "glm-relay", "sub": "alice", "iat": NOW, "exp": NOW + 600}
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_default_clock_is_the_real_one():
    token = mint_access_token("alice", 60, SIGNING_KEY)

    claims = verify_access_token(token, SIGNING_KEY)
    assert abs(claims.expires_at - (time.time() + 60)) < 5


def test_token_is_valid_until_the_second_before_exp():
    token = mint_access_token("alice", 60, SIGNING_KEY, now=NOW)

    assert verify_access_token(token, SIGNING_KEY, now=NOW + 59.999).sub == "alice"
    assert denied(token, now=NOW + 60) == "token expired"


def test_leeway_extends_expiry_and_not_before(forge, claims):
    expired = forge({**claims, "exp": NOW - 5})
    early = forge({**claims, "nbf": NOW + 5})

    assert verify_access_token(expired, SIGNING_KEY, now=NOW, leeway_seconds=10).sub == "alice"
    assert verify_access_token(early, SIGNING_KEY, now=NOW, leeway_seconds=10).sub == "alice"
    assert denied(expired, leeway=5) == "token expired"
    assert denied(early, leeway=4) == "token not yet valid"


def test_fractional_exp_is_accepted_and_floored(forge, claims):
    token = forge({**claims, "exp": NOW + 10.75})

    assert verify_access_token(token, SIGNING_KEY, now=NOW).expires_at == NOW + 10


def test_nbf_in_the_past_and_extra_claims_are_accepted(forge, claims):
    token = forge({**claims, "nbf": NOW - 1, "jti": "abc", "scope": ["x"]})

    assert verify_access_token(token, SIGNING_KEY, now=NOW).sub == "alice"


def test_iat_in_the_future_is_not_a_refusal(forge, claims):
    # A minter whose clock runs slightly ahead must not produce tokens that fail at first.
    token = forge({**claims, "iat": NOW + 30})

    assert verify_access_token(token, SIGNING_KEY, now=NOW).sub == "alice"


def test_null_limit_fields_mean_unset(forge, claims):
    token = forge({**claims, "limits": {"requests_per_day": None, "max_tokens": 7}})

    assert verify_access_token(token, SIGNING_KEY, now=NOW).limits == TokenLimits(max_tokens=7)


# --- algorithm -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [
        {"alg": "none", "typ": "JWT"},
        {"alg": "None"},
        {"alg": "NONE"},
        {"alg": "hs256"},
        {"alg": ""},
        {"alg": None},
        {"alg": ["HS256"]},
        {"typ": "JWT"},
    ],
    ids=["none", "None", "NONE", "lowercase", "empty", "null", "list", "missing"],
)
def test_algorithms_other_than_hs256_are_refused(forge, claims, header):
    assert denied(forge(claims, header, signature="")) == "algorithm not allowed"
    assert denied(forge(claims, header)) == "algorithm not allowed"


@pytest.mark.parametrize("algorithm", ["HS384", "HS512"])
def test_other_hmac_algorithms_with_the_right_key_are_refused(claims, algorithm):
    token = jwt.encode(claims, SIGNING_KEY + SIGNING_KEY, algorithm=algorithm)

    assert denied(token, key=SIGNING_KEY + SIGNING_KEY) == "algorithm not allowed"


def test_rs256_token_is_refused():
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    claims = {"iss": "glm-relay", "sub": "alice", "exp": NOW + 60}

    assert denied(jwt.encode(claims, private_key, algorithm="RS256")) == "algorithm not allowed"


def test_key_confusion_rs256_header_with_hmac_signature_is_refused(forge, claims):
    # An RS256 header over an HMAC made with the (supposedly public) verification key.
    assert denied(forge(claims, {"alg": "RS256", "typ": "JWT"})) == "algorithm not allowed"


def test_key_confusion_with_a_pem_shaped_key_is_a_configuration_error(claims):
    public_pem = (
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    forged = f"{segment({'alg': 'HS256'})}.{segment(claims)}"
    forged += "." + hs256(forged, public_pem)

    with pytest.raises(ValueError, match="PEM"):
        verify_access_token(forged, public_pem, now=NOW)


@pytest.mark.parametrize(
    "extra", [{"crit": ["exp"]}, {"crit": ["b64"], "b64": False}, {"b64": True}]
)
def test_critical_and_unencoded_payload_headers_are_refused(forge, claims, extra):
    assert denied(forge(claims, {"alg": "HS256", **extra})) == "malformed token"


# --- signature -----------------------------------------------------------------------------------


def test_tampered_payload_is_refused(claims):
    token = mint_access_token("alice", 60, SIGNING_KEY, now=NOW)
    head, _, sig = token.split(".")
    forged_payload = segment({**claims, "sub": "mallory"})

    assert denied(f"{head}.{forged_payload}.{sig}") == "bad signature"


def test_tampered_signature_is_refused():
    head, body, sig = mint_access_token("alice", 60, SIGNING_KEY, now=NOW).split(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]

    assert denied(f"{head}.{body}.{flipped}") == "bad signature"
    assert denied(f"{head}.{body}.") == "bad signature"
    assert denied(f"{head}.{body}.{sig[:-3]}") == "bad signature"


def test_token_signed_with_another_key_is_refused():
    token = mint_access_token("alice", 60, "another-signing-key-0123456789-abcdefghij", now=NOW)

    assert denied(token) == "bad signature"


def test_signature_is_checked_before_claims(forge, claims):
    del claims["sub"]
    unsigned = forge({**claims, "exp": "soon"}, key="not-the-key-but-long-enough-0123456789")

    assert denied(unsigned) == "bad signature"


# --- time ----------------------------------------------------------------------------------------


def test_expired_token_is_refused(forge, claims):
    assert denied(forge({**claims, "exp": NOW - 1})) == "token expired"


def test_token_used_before_nbf_is_refused(forge, claims):
    assert denied(forge({**claims, "nbf": NOW + 60})) == "token not yet valid"


# --- claims --------------------------------------------------------------------------------------


@pytest.mark.parametrize("claim", ["sub", "exp", "iss"])
def test_missing_required_claim_is_named(forge, claims, claim):
    del claims[claim]

    assert denied(forge(claims)) == f"missing claim: {claim}"


@pytest.mark.parametrize("claim", ["sub", "exp"])
def test_null_required_claim_counts_as_missing(forge, claims, claim):
    assert denied(forge({**claims, claim: None})) == f"missing claim: {claim}"


@pytest.mark.parametrize(
    "sub",
    [42, 1.5, True, ["alice"], {"name": "alice"}, "", "x" * 129, "alice\nadmin", "bob\x00"],
    ids=["int", "float", "bool", "list", "object", "empty", "too-long", "newline", "nul"],
)
def test_invalid_sub_is_refused(forge, claims, sub):
    assert denied(forge({**claims, "sub": sub})) == "invalid claim: sub"


def test_sub_of_exactly_128_characters_is_accepted(forge, claims):
    token = forge({**claims, "sub": "x" * 128})

    assert verify_access_token(token, SIGNING_KEY, now=NOW).sub == "x" * 128


@pytest.mark.parametrize(
    "exp",
    [str(NOW + 60), True, [NOW + 60], {"t": NOW + 60}, -1, 2**60],
    ids=["string", "bool", "list", "object", "negative", "huge"],
)
def test_exp_that_is_not_a_numeric_date_is_refused(forge, claims, exp):
    assert denied(forge({**claims, "exp": exp})) == "invalid claim: exp"


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_exp_is_refused(forge, claims, literal):
    raw = '{"iss":"glm-relay","sub":"alice","exp":%s}' % literal  # noqa: UP031

    assert denied(forge(raw)) == "invalid claim: exp"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_optional_time_claims_must_be_numeric_dates(forge, claims, claim):
    assert denied(forge({**claims, claim: "yesterday"})) == f"invalid claim: {claim}"


def test_malformed_claim_wins_over_expiry(forge, claims):
    assert denied(forge({**claims, "exp": NOW - 10, "nbf": "x"})) == "invalid claim: nbf"


@pytest.mark.parametrize("iss", ["other", "GLM-RELAY", "", 1])
def test_wrong_issuer_is_refused(forge, claims, iss):
    assert denied(forge({**claims, "iss": iss})) == "wrong issuer"


@pytest.mark.parametrize("aud", ["glm-relay", ["glm-relay"], ""])
def test_audience_claim_is_refused(forge, claims, aud):
    assert denied(forge({**claims, "aud": aud})) == "audience not allowed"


@pytest.mark.parametrize(
    "limits",
    [[], "x", 5, {"requests_per_hour": 1}, {"max_tokens": 1, "admin": True}],
    ids=["list", "string", "number", "unknown-field", "extra-field"],
)
def test_limits_that_are_not_the_known_object_are_refused(forge, claims, limits):
    assert denied(forge({**claims, "limits": limits})) == "invalid claim: limits"


@pytest.mark.parametrize("value", [-1, 1.5, 10.0, "10", True, 2**53, [1]])
@pytest.mark.parametrize("field", ["requests_per_day", "tokens_per_day", "max_tokens"])
def test_limit_values_must_be_non_negative_integers(forge, claims, field, value):
    token = forge({**claims, "limits": {field: value}})

    assert denied(token) == f"invalid claim: limits.{field}"


# --- shape ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("token", [None, ""])
def test_absent_token_is_missing(token):
    assert denied(token) == "missing token"


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b",
        "a.b.c.d",
        "...",
        "..",
        " " + "a.b.c",
        "a.b.c\n",
        "Bearer abc.def.ghi",
        "abc.def.ghi",
        "eyJhbGciOiJIUzI1NiJ9.e30=.sig",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.ab+/cd",
        "é.é.é",
        "a" * 100,
    ],
)
def test_garbage_strings_are_malformed(token):
    assert denied(token) == "malformed token"


def test_non_string_token_is_malformed():
    assert denied(b"a.b.c") == "malformed token"
    assert denied(12345) == "malformed token"


@pytest.mark.parametrize(
    ("header", "payload"),
    [
        ('"HS256"', {"sub": "alice"}),
        ("[1,2]", {"sub": "alice"}),
        ("{not json", {"sub": "alice"}),
        ({"alg": "HS256", "kid": 7}, {"sub": "alice"}),
        ({"alg": "HS256"}, "[1,2]"),
        ({"alg": "HS256"}, '"alice"'),
        ({"alg": "HS256"}, "{not json"),
    ],
    ids=[
        "header-string",
        "header-array",
        "header-not-json",
        "kid-not-string",
        "payload-array",
        "payload-string",
        "payload-not-json",
    ],
)
def test_segments_that_are_not_json_objects_are_malformed(forge, header, payload):
    assert denied(forge(payload, header)) == "malformed token"


def test_payload_that_is_not_utf8_is_malformed():
    head = segment({"alg": "HS256"})
    signing_input = f"{head}.{'_w'}"  # base64url of 0xff: not UTF-8

    assert denied(f"{signing_input}.{hs256(signing_input)}") == "malformed token"


def test_oversized_token_is_refused_before_anything_else(forge, claims):
    validly_signed = forge({**claims, "pad": "x" * MAX_TOKEN_BYTES})

    assert denied(validly_signed) == "token too large"
    assert denied("x" * 1_000_000) == "token too large"


def test_token_of_exactly_the_maximum_size_is_accepted(forge, claims):
    base = forge({**claims, "pad": ""})
    token = forge({**claims, "pad": "x" * ((MAX_TOKEN_BYTES - len(base)) * 3 // 4)})
    while len(token) < MAX_TOKEN_BYTES:  # base64 grows in steps: top up to the exact limit
        pad = jwt.decode(token, options={"verify_signature": False})["pad"] + "x"
        candidate = forge({**claims, "pad": pad})
        if len(candidate) > MAX_TOKEN_BYTES:
            break
        token = candidate

    assert MAX_TOKEN_BYTES - 4 <= len(token) <= MAX_TOKEN_BYTES
    assert verify_access_token(token, SIGNING_KEY, now=NOW).sub == "alice"


# --- keys and minting ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key", ["", "short", "x" * 31, "-----BEGIN PUBLIC KEY-----\n" + "A" * 64], ids=repr
)
def test_unusable_signing_key_is_a_configuration_error_not_a_denial(key):
    token = mint_access_token("alice", 60, SIGNING_KEY, now=NOW)

    with pytest.raises(ValueError) as verifying:
        verify_access_token(token, key, now=NOW)
    with pytest.raises(ValueError) as minting:
        mint_access_token("alice", 60, key, now=NOW)
    for caught in (verifying, minting):
        assert not isinstance(caught.value, AccessDenied)
        assert not key or key not in str(caught.value)


def test_key_of_exactly_32_bytes_is_accepted():
    key = "k" * 32

    token = mint_access_token("alice", 60, key, now=NOW)
    assert verify_access_token(token, key, now=NOW).sub == "alice"


@pytest.mark.parametrize("sub", ["", "x" * 129, "a\tb", 7, None])
def test_minting_refuses_a_sub_the_verifier_would_refuse(sub):
    with pytest.raises(ValueError, match="sub"):
        mint_access_token(sub, 60, SIGNING_KEY)


@pytest.mark.parametrize("ttl", [0, -1, 1.5, True, "60"])
def test_minting_refuses_a_ttl_that_is_not_a_positive_integer(ttl):
    with pytest.raises(ValueError, match="ttl"):
        mint_access_token("alice", ttl, SIGNING_KEY)


@pytest.mark.parametrize(
    "limits",
    [TokenLimits(requests_per_day=-1), TokenLimits(max_tokens=2**53), TokenLimits(max_tokens=1.5)],  # type: ignore[arg-type]
)
def test_minting_refuses_limits_the_verifier_would_refuse(limits):
    with pytest.raises(ValueError, match="limits"):
        mint_access_token("alice", 60, SIGNING_KEY, limits=limits)
