"""Zhipu's authentication: a JWT signed with the key's secret, or the raw key, as a bearer token.

The JWT is checked by hand rather than with a JWT library because Zhipu's rules differ from the
standard ones: `exp` and `timestamp` are in milliseconds, and the header must say
`sign_type: SIGN`. A token whose `exp` was written in seconds therefore looks long expired, which is
exactly what the real service answers (code 1003).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

from mock_upstream import errors
from mock_upstream.options import MockOptions


@dataclass(frozen=True)
class AuthResult:
    """What the Authorization header turned out to be; `claims` is set whenever a JWT decoded."""

    kind: str  # "jwt" | "api_key" | "missing" | "invalid"
    claims: dict[str, Any] | None = None
    header: dict[str, Any] | None = None
    error: errors.ZhipuError | None = None
    key_id: str | None = None  # which accepted key the header was made with

    @property
    def ok(self) -> bool:
        return self.error is None


def _fail(code: str, message: str, **fields: Any) -> AuthResult:
    return AuthResult(error=errors.ZhipuError(401, code, message), **fields)


def _b64_json(segment: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("JWT segment is not a JSON object")
    return value


def _is_millis(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_authorization(
    value: str | None, options: MockOptions, now_ms: int | None = None
) -> AuthResult:
    """Decide what Zhipu would answer for this `Authorization` header value.

    >>> check_authorization(None, MockOptions(api_key="a.b")).error.code
    '1001'
    """
    if value is None or not value.strip():
        return _fail(errors.NO_AUTH_HEADER, "No Authorization header was received.", kind="missing")
    scheme, _, rest = value.strip().partition(" ")
    # Older clients sent the token without the "Bearer" scheme; the service accepts both.
    token = rest.strip() if scheme.lower() == "bearer" else value.strip()
    if not token:
        return _fail(errors.NO_AUTH_HEADER, "The Authorization header is empty.", kind="missing")

    for key in options.api_keys:
        if hmac.compare_digest(token.encode(), key.encode()):
            return AuthResult(kind="api_key", key_id=key.partition(".")[0])

    parts = token.split(".")
    if len(parts) != 3:
        return _fail(
            errors.INVALID_TOKEN, "The token is neither the API key nor a JWT.", kind="invalid"
        )
    try:
        header = _b64_json(parts[0])
        claims = _b64_json(parts[1])
        signature = base64.urlsafe_b64decode(parts[2] + "=" * (-len(parts[2]) % 4))
    except (ValueError, binascii.Error):
        return _fail(errors.INVALID_TOKEN, "The token could not be decoded.", kind="invalid")

    def invalid(message: str) -> AuthResult:
        return _fail(errors.INVALID_TOKEN, message, kind="invalid", claims=claims, header=header)

    if header.get("alg") != "HS256" or header.get("sign_type") != "SIGN":
        return invalid("The token header must carry alg HS256 and sign_type SIGN.")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii", "replace")
    named = claims.get("api_key")
    # The secret of the key the claim names; an unknown name is checked against the first key's,
    # so a bad signature is reported before the unknown name.
    known = options.secret_of(named) if isinstance(named, str) else None
    secret = options.key_secret if known is None else known
    expected = hmac.new(secret.encode(), signing_input, hashlib.sha256).digest()
    if not hmac.compare_digest(signature, expected):
        return invalid("The token signature does not match the API key.")
    if known is None:
        return invalid("The token's api_key claim does not name this API key.")
    if not _is_millis(claims.get("timestamp")) or not _is_millis(claims.get("exp")):
        return invalid("The token needs integer timestamp and exp claims in milliseconds.")
    now = int(time.time() * 1000) if now_ms is None else now_ms
    if claims["exp"] <= now:
        return _fail(
            errors.EXPIRED_TOKEN,
            "The token has expired; sign a new one.",
            kind="invalid",
            claims=claims,
            header=header,
        )
    return AuthResult(kind="jwt", claims=claims, header=header, key_id=named)


def key_fault_error(fault: str, retry_after: int | None) -> errors.ZhipuError:
    """What Zhipu answers a key that is `invalid`, out of `balance` or under a `rate_limit`."""
    if fault == "invalid":
        return errors.ZhipuError(401, errors.INVALID_TOKEN, "The API key is invalid.")
    if fault == "balance":
        return errors.ZhipuError(
            429, errors.BALANCE_EXHAUSTED, "The account balance is exhausted; top it up and retry."
        )
    headers = {"retry-after": str(1 if retry_after is None else retry_after)}
    return errors.ZhipuError(
        429,
        errors.TOO_MUCH_CONCURRENCY,
        "Too many concurrent requests for this API; lower the concurrency.",
        headers,
    )
