"""HS256 compact JWS with the standard library: the relay's own access tokens and Zhipu's JWT.

Both are HMAC-SHA256 tokens, which need nothing beyond ``hmac``, ``hashlib``, ``base64`` and
``json``. Doing them here keeps PyJWT (and, once installed, ``cryptography``, which PyJWT imports
with itself) off the cold start of every relay that has no identity provider configured.

Strict by design, for a verifier that accepts exactly one algorithm:

- the header's ``alg`` must be exactly ``"HS256"`` (not ``none``, not another case, not RS256
  over an HMAC made with a public key);
- ``crit`` and ``b64`` (RFC 7797 unencoded payloads) are refused, since nothing here implements
  any extension;
- segments are unpadded base64url and must decode; header and payload must be JSON objects;
- the signature is compared in constant time (``hmac.compare_digest``).

Tokens are written as PyJWT writes them (header keys sorted, compact JSON), so the two
interoperate both ways. Key policy (length, PEM) belongs to the caller.

Example:
    token = encode_hs256({"sub": "alice", "exp": 1_800_000_000}, key)
    payload = decode_hs256(token, key)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "ALGORITHM",
    "AlgorithmNotAllowed",
    "BadSignature",
    "JWSError",
    "MalformedToken",
    "decode_hs256",
    "encode_hs256",
    "unverified_header",
]

ALGORITHM = "HS256"
_SEGMENT = re.compile(r"[A-Za-z0-9_-]*")


class JWSError(Exception):
    """A token that cannot be accepted; subclasses say why. Messages never quote the token."""


class MalformedToken(JWSError):
    """Not a compact JWS with JSON-object segments, or an extension header (crit, b64)."""


class AlgorithmNotAllowed(JWSError):
    """The header's ``alg`` is anything but exactly HS256."""


class BadSignature(JWSError):
    """The HMAC does not match: another key, or a changed header or payload."""


def b64url_encode(data: bytes) -> str:
    """Unpadded base64url (RFC 7515 section 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(segment: str) -> bytes:
    """Decode unpadded base64url; anything else raises :class:`MalformedToken`."""
    if not _SEGMENT.fullmatch(segment) or len(segment) % 4 == 1:
        raise MalformedToken("malformed token")
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise MalformedToken("malformed token") from None


def encode_hs256(
    payload: Mapping[str, Any], key: str | bytes, *, headers: Mapping[str, Any] | None = None
) -> str:
    """Sign ``payload``; ``headers`` adds members to ``{"alg": "HS256", "typ": "JWT"}``."""
    header: dict[str, Any] = {"typ": "JWT", **(headers or {}), "alg": ALGORITHM}
    head = b64url_encode(json.dumps(header, separators=(",", ":"), sort_keys=True).encode())
    body = b64url_encode(json.dumps(dict(payload), separators=(",", ":")).encode())
    signing_input = f"{head}.{body}"
    return f"{signing_input}.{b64url_encode(_mac(signing_input, key))}"


def unverified_header(token: str) -> dict[str, Any]:
    """The JOSE header of a compact JWS, unverified: for choosing a verifier, never trusting.

    Raises :class:`MalformedToken` unless the token has three base64url segments and its header
    is a JSON object whose ``kid``, when present, is a string.
    """
    return _load(token)[0]


def decode_hs256(token: str, key: str | bytes) -> dict[str, Any]:
    """The payload of an HS256 token whose signature ``key`` made; raises :class:`JWSError`.

    Order: shape, algorithm, extensions, signature, then the payload's JSON, so nothing of an
    unsigned payload is read.
    """
    header, payload_bytes, signature, signing_input = _load(token)
    if header.get("alg") != ALGORITHM:
        raise AlgorithmNotAllowed("algorithm not allowed")
    if "crit" in header or "b64" in header:
        raise MalformedToken("malformed token")
    if not hmac.compare_digest(_mac(signing_input, key), signature):
        raise BadSignature("bad signature")
    payload = _json_object(payload_bytes)
    return payload


def _load(token: str) -> tuple[dict[str, Any], bytes, bytes, str]:
    """Header (parsed), payload bytes, signature bytes and signing input of a compact JWS."""
    if not isinstance(token, str):
        raise MalformedToken("malformed token")
    parts = token.split(".")
    if len(parts) != 3 or not parts[0] or not parts[1]:
        raise MalformedToken("malformed token")
    head, body, signature = parts
    header_bytes = b64url_decode(head)
    payload_bytes = b64url_decode(body)
    signature_bytes = b64url_decode(signature)
    header = _json_object(header_bytes)
    if "kid" in header and not isinstance(header["kid"], str):
        raise MalformedToken("malformed token")
    return header, payload_bytes, signature_bytes, f"{head}.{body}"


def _json_object(data: bytes) -> dict[str, Any]:
    try:
        value = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        raise MalformedToken("malformed token") from None
    if not isinstance(value, dict):
        raise MalformedToken("malformed token")
    return value


def _mac(signing_input: str, key: str | bytes) -> bytes:
    secret = key.encode("utf-8") if isinstance(key, str) else key
    return hmac.new(secret, signing_input.encode("ascii"), hashlib.sha256).digest()
