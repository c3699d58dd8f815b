"""Access tokens: who may spend money through the public function URL.

The function URL has ``AuthType NONE``, so the function checks every request itself. A caller
presents a short-lived HS256 JWT signed with the relay's own signing secret (not the Zhipu key).
Claims:

``iss``
    Always ``"glm-relay"``: set by the minter, required by the verifier, so a token signed with the
    same secret for some other purpose is not accepted here.
``sub``
    Who the token is for (required, non-empty printable string, at most 128 characters); used as
    the quota key and in logs, hence printable only.
``exp`` / ``iat`` / ``nbf``
    Standard NumericDate seconds since the epoch. ``exp`` is required, ``nbf`` is honoured when
    present, ``iat`` is informational (type-checked, not compared with the clock, so a minter
    whose clock runs a little ahead does not produce tokens that fail for their first seconds).
``limits``
    Optional object with optional non-negative integer fields ``requests_per_day``,
    ``tokens_per_day`` and ``max_tokens`` (at least 1: no answer fits in none), and non-negative
    numbers ``spend_per_day`` and ``spend_per_month`` (money, in the deployment's ``CURRENCY``):
    per-token overrides of the configured quotas and budgets. Unknown fields are rejected, so a
    newer minter cannot grant something an older verifier would ignore.
``aud``
    Not used; a token carrying one is rejected (RFC 7519: a recipient that is not named in ``aud``
    must reject it).

Every rejection raises :class:`AccessDenied` with a short message that is safe to return to the
caller and to log: it never contains the token or the key. A bad *key* (empty, shorter than 32
bytes, or PEM text) is a deployment error, not a caller error, and raises ``ValueError``.

Signing and checking use :mod:`glm_relay.jws` (standard library only), so these tokens never
load PyJWT or ``cryptography``: a relay without an identity provider does not pay for them.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from glm_relay.jws import (
    AlgorithmNotAllowed,
    BadSignature,
    JWSError,
    decode_hs256,
    encode_hs256,
)

ALGORITHM = "HS256"
ISSUER = "glm-relay"
MAX_TOKEN_BYTES = 4096
MAX_SUB_LENGTH = 128
# RFC 7518 section 3.2: an HS256 key must be at least as long as the hash output.
MIN_KEY_BYTES = 32
# Larger than any sane quota, small enough to stay exact in JSON doubles and SQL bigints.
MAX_LIMIT_VALUE = 2**53 - 1

_COUNT_FIELDS = ("requests_per_day", "tokens_per_day", "max_tokens")
_SPEND_FIELDS = ("spend_per_day", "spend_per_month")
_LIMIT_FIELDS = (*_COUNT_FIELDS, *_SPEND_FIELDS)
# Checked in this order after the signature; a claim that is null counts as missing.
_REQUIRED_CLAIMS = ("sub", "exp", "iss")
# Compact JWS: three unpadded base64url segments; the signature may be empty (alg "none").
_COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
_SSH_KEY_PREFIXES = ("ssh-", "ecdsa-sha2-")
_BEARER = re.compile(r"bearer[ \t]+(?P<credentials>.*)", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class TokenLimits:
    """Per-token quota overrides; ``None`` means "use the configured default"."""

    requests_per_day: int | None = None
    tokens_per_day: int | None = None
    max_tokens: int | None = None
    spend_per_day: float | None = None
    spend_per_month: float | None = None

    def as_claim(self) -> dict[str, int | float]:
        """The ``limits`` claim: only the fields that are set.

        >>> TokenLimits(max_tokens=512).as_claim()
        {'max_tokens': 512}
        """
        return {name: value for name in _LIMIT_FIELDS if (value := getattr(self, name)) is not None}


@dataclass(frozen=True, slots=True)
class AccessClaims:
    """What a verified token grants: who, until when, and any quota overrides."""

    sub: str
    expires_at: int
    limits: TokenLimits = TokenLimits()


class AccessDenied(Exception):
    """The request carries no usable access token; answer 401 with ``code`` and ``message``.

    ``message`` is specific ("token expired", "bad signature", ...) and safe to show and log.
    """

    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def verify_access_token(
    token: str | None,
    signing_key: str,
    *,
    now: float | None = None,
    leeway_seconds: int = 0,
) -> AccessClaims:
    """Check a token's algorithm, signature and claims; return what it grants.

    Raises :class:`AccessDenied` for anything the caller sent, ``ValueError`` for an unusable key.
    ``leeway_seconds`` widens ``exp`` and ``nbf`` by that much for clock skew.

    >>> key = "k" * 32
    >>> verify_access_token(mint_access_token("alice", 60, key, now=0), key, now=30).sub
    'alice'
    """
    _check_key(signing_key)
    token = checked_token(token)

    payload = _verified_payload(token, signing_key)
    current = time.time() if now is None else now
    return _claims_from_payload(payload, current, leeway_seconds)


def mint_access_token(
    sub: str,
    ttl_seconds: int,
    signing_key: str,
    *,
    limits: TokenLimits | None = None,
    now: float | None = None,
) -> str:
    """Sign a token for ``sub`` valid for ``ttl_seconds`` from ``now``.

    Raises ``ValueError`` for an invalid ``sub``, TTL, limit or key, so a token that the verifier
    would reject is never produced.

    >>> token = mint_access_token("alice", 3600, "k" * 32, limits=TokenLimits(max_tokens=512))
    >>> token.count(".")
    2
    """
    _check_key(signing_key)
    if not valid_subject(sub):
        raise ValueError(
            f"sub must be a non-empty printable string of at most {MAX_SUB_LENGTH} characters"
        )
    if not _is_int(ttl_seconds) or ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be a positive integer")
    issued_at = int(time.time() if now is None else now)
    payload: dict[str, Any] = {
        "iss": ISSUER,
        "sub": sub,
        "iat": issued_at,
        "exp": issued_at + ttl_seconds,
    }
    if limits is not None:
        for name, value in limits.as_claim().items():
            if not _valid_limit(name, value):
                raise ValueError(f"limits.{name} {_LIMIT_RULE[name]}")
        if claim := limits.as_claim():
            payload["limits"] = claim
    token = encode_hs256(payload, signing_key)
    if len(token) > MAX_TOKEN_BYTES:  # only reachable with an absurd sub; keep the invariant
        raise ValueError("token would exceed the maximum size")
    return token


def bearer_token(headers: Mapping[str, str] | None, query: Mapping[str, str] | None) -> str | None:
    """The token a request presents, or ``None``.

    ``Authorization: Bearer X`` (scheme case-insensitive, header name too) wins over
    ``x-api-key: X`` (how Anthropic's SDKs send a key), which wins over ``?access_token=X``
    (a browser ``EventSource`` cannot set headers). An ``Authorization`` header with another
    scheme is ignored, not treated as a token.

    >>> bearer_token({"Authorization": "Bearer abc"}, {"access_token": "xyz"})
    'abc'
    """
    api_key = None
    for name, value in (headers or {}).items():
        if not isinstance(value, str):
            continue
        lowered = name.lower()
        if lowered == "x-api-key" and value.strip():
            api_key = value.strip()
        if lowered != "authorization":
            continue
        match = _BEARER.fullmatch(value.strip())
        if match and (credentials := match.group("credentials").strip()):
            return credentials
    if api_key is not None:
        return api_key
    from_query = (query or {}).get("access_token")
    if isinstance(from_query, str) and from_query.strip():
        return from_query.strip()
    return None


def _check_key(signing_key: str) -> None:
    if not isinstance(signing_key, str) or not signing_key:
        raise ValueError("the access-token signing key is empty")
    if len(signing_key.encode("utf-8")) < MIN_KEY_BYTES:
        raise ValueError(f"the access-token signing key must be at least {MIN_KEY_BYTES} bytes")
    # A public key used as an HMAC secret is the algorithm-confusion attack's precondition.
    if "-----BEGIN" in signing_key or signing_key.lstrip().startswith(_SSH_KEY_PREFIXES):
        raise ValueError("the access-token signing key must be a secret string, not a PEM key")


def _verified_payload(token: str, signing_key: str) -> dict[str, Any]:
    """Algorithm, then signature, then the required claims; each failure a specific refusal.

    Nothing but HS256 ever reaches the HMAC check, so neither "none" nor an asymmetric algorithm
    can be tried against the secret.
    """
    try:
        payload = decode_hs256(token, signing_key)
    except AlgorithmNotAllowed:
        raise AccessDenied("algorithm not allowed") from None
    except BadSignature:
        raise AccessDenied("bad signature") from None
    except JWSError:
        raise AccessDenied("malformed token") from None
    for claim in _REQUIRED_CLAIMS:
        if payload.get(claim) is None:
            raise AccessDenied(f"missing claim: {claim}")
    return payload


def _claims_from_payload(payload: dict[str, Any], now: float, leeway: int) -> AccessClaims:
    """Types first, then the clock: a token with a malformed claim is never "expired"."""
    if payload.get("iss") != ISSUER:
        raise AccessDenied("wrong issuer")
    if "aud" in payload:
        raise AccessDenied("audience not allowed")
    sub = payload["sub"]
    if not valid_subject(sub):
        raise AccessDenied("invalid claim: sub")
    exp = payload["exp"]
    if not _is_numeric_date(exp):
        raise AccessDenied("invalid claim: exp")
    nbf = payload.get("nbf")
    if nbf is not None and not _is_numeric_date(nbf):
        raise AccessDenied("invalid claim: nbf")
    iat = payload.get("iat")
    if iat is not None and not _is_numeric_date(iat):
        raise AccessDenied("invalid claim: iat")
    limits = _limits_from_claim(payload.get("limits"))

    if now >= exp + leeway:
        raise AccessDenied("token expired")
    if nbf is not None and now < nbf - leeway:
        raise AccessDenied("token not yet valid")
    return AccessClaims(sub=sub, expires_at=math.floor(exp), limits=limits)


def _limits_from_claim(claim: object) -> TokenLimits:
    if claim is None:
        return TokenLimits()
    if not isinstance(claim, dict) or not set(claim) <= set(_LIMIT_FIELDS):
        raise AccessDenied("invalid claim: limits")
    values: dict[str, Any] = {}
    for name in _LIMIT_FIELDS:
        value = claim.get(name)
        if value is not None and not _valid_limit(name, value):
            raise AccessDenied(f"invalid claim: limits.{name}")
        values[name] = value
    return TokenLimits(**values)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_LIMIT_RULE = {
    **{name: f"must be an integer from 0 to {MAX_LIMIT_VALUE}" for name in _COUNT_FIELDS},
    "max_tokens": f"must be an integer from 1 to {MAX_LIMIT_VALUE}",
    **{name: "must be a number from 0" for name in _SPEND_FIELDS},
}


def _valid_limit(name: str, value: object) -> bool:
    """A count is an integer (``max_tokens`` at least 1: a token allowing no answer at all
    would only fail upstream); a spend is any finite non-negative number."""
    if name in _SPEND_FIELDS:
        return _is_numeric_date(value)
    least = 1 if name == "max_tokens" else 0
    return _is_int(value) and least <= value <= MAX_LIMIT_VALUE  # type: ignore[operator]


def _is_numeric_date(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value) and 0 <= value <= MAX_LIMIT_VALUE


def valid_subject(sub: object) -> bool:
    """Whether ``sub`` can key quotas and logs: printable, non-empty, bounded."""
    return isinstance(sub, str) and 0 < len(sub) <= MAX_SUB_LENGTH and sub.isprintable()


def checked_token(token: object, max_bytes: int = MAX_TOKEN_BYTES) -> str:
    """The token, once it looks like a compact JWS of at most ``max_bytes``; the same first
    check for the relay's own tokens and a provider's."""
    if token is None or token == "":
        raise AccessDenied("missing token")
    if not isinstance(token, str):
        raise AccessDenied("malformed token")
    if len(token) > max_bytes:
        raise AccessDenied("token too large")
    if not _COMPACT_JWS.fullmatch(token):
        raise AccessDenied("malformed token")
    return token
