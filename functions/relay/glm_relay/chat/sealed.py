"""Sealed reasoning: a model's reasoning handed to a client as an opaque string and read back.

GLM-5.1 and later, with thinking on, refuse an assistant tool-call turn sent back without its
``reasoning_content``. A client that keeps no state on the relay (the Responses API with
``store: false`` and ``include: ["reasoning.encrypted_content"]``, the Messages API's thinking
``signature``) returns the reasoning with its next turn (a turn without it gets a placeholder:
``upstream/translate.py``), and the relay must know the reasoning is its own before sending it
upstream as the model's words. :class:`ReasoningSeal`
writes ``glmr1.<payload>.<mac>``: the payload is the model name and the reasoning (JSON,
zlib-compressed, unpadded base64url), the mac an HMAC-SHA256 over the version tag and payload.
Anything changed, truncated, made with another key or of another version opens to ``None``.

The seal signs, it does not encrypt: the same reasoning reaches the client as summary or thinking
text anyway, so secrecy would protect nothing; integrity is what the upstream turn needs.

The key: HMAC-SHA256 of the fixed label :data:`KEY_LABEL` under the secret half of the Zhipu API
key (``upstream.credentials.CredentialStore.derive_key``). Every relay has that secret (it cannot
answer without it), unlike the access-token secret, which deployments using an identity provider
or no tokens lack. The label keeps the derived key apart from the JWTs signed with the secret
itself, and the secret never leaves the credential store. Rotating the Zhipu key invalidates
earlier seals: they open to ``None``, as a tampered one does. The key is never logged.

Example:
    seal = ReasoningSeal(await credentials.derive_key(KEY_LABEL))
    token = seal.seal("glm-5.1", "The user wants the weather, so ...")
    seal.open(token)  # SealedReasoning(model="glm-5.1", reasoning="The user wants ...")
    seal.open(token[:-2] + "xx")  # None
"""

from __future__ import annotations

import hashlib
import hmac
import json
import zlib
from dataclasses import dataclass

from glm_relay.jws import JWSError, b64url_decode, b64url_encode

__all__ = ["KEY_LABEL", "ReasoningSeal", "SealedReasoning", "seal_for_key"]

KEY_LABEL = b"glm-relay/sealed-reasoning/v1"
_VERSION = "glmr1"
# A sealed string above this many characters is not opened: it bounds the decompression work a
# caller can ask for (the request body limit bounds it first; this is the seal's own guard).
MAX_SEALED_CHARS = 4_000_000
# Decompressed payloads above this many bytes are refused (a zlib bomb stays a refusal).
_MAX_PAYLOAD_BYTES = 16_000_000


@dataclass(frozen=True, slots=True)
class SealedReasoning:
    """What a seal opens to: the reasoning and the model that wrote it."""

    model: str
    reasoning: str


class ReasoningSeal:
    """Seals reasoning under one key and opens only what that key sealed."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        if len(key) < 32:
            raise ValueError("a reasoning seal needs a key of at least 32 bytes")
        self._key = key

    def __repr__(self) -> str:
        return "ReasoningSeal(<key hidden>)"

    def seal(self, model: str, reasoning: str) -> str:
        """The opaque string for ``reasoning`` written by ``model``."""
        data = json.dumps({"m": model, "r": reasoning}, separators=(",", ":"), ensure_ascii=False)
        payload = b64url_encode(zlib.compress(data.encode("utf-8"), 6))
        return f"{_VERSION}.{payload}.{b64url_encode(self._mac(payload))}"

    def open(self, sealed: object) -> SealedReasoning | None:
        """The reasoning sealed in ``sealed``, or ``None`` for anything this key did not seal."""
        if not isinstance(sealed, str) or len(sealed) > MAX_SEALED_CHARS:
            return None
        parts = sealed.split(".")
        if len(parts) != 3 or parts[0] != _VERSION:
            return None
        _, payload, mac = parts
        try:
            if not hmac.compare_digest(self._mac(payload), b64url_decode(mac)):
                return None
            inflater = zlib.decompressobj()
            data = inflater.decompress(b64url_decode(payload), _MAX_PAYLOAD_BYTES)
            if inflater.unconsumed_tail or inflater.unused_data or not inflater.eof:
                return None
            value = json.loads(data.decode("utf-8"))
        except (JWSError, zlib.error, ValueError, RecursionError):
            return None
        if not isinstance(value, dict):
            return None
        model, reasoning = value.get("m"), value.get("r")
        if not isinstance(model, str) or not isinstance(reasoning, str):
            return None
        return SealedReasoning(model, reasoning)

    def _mac(self, payload: str) -> bytes:
        message = f"{_VERSION}.{payload}".encode("ascii", "replace")
        return hmac.new(self._key, message, hashlib.sha256).digest()


_current: ReasoningSeal | None = None
_current_key = b""


def seal_for_key(key: bytes) -> ReasoningSeal:
    """The container's seal for ``key``, made once per key: a new key (the Zhipu key rotated)
    replaces the seal, and seals made under the old one no longer open."""
    global _current, _current_key
    if _current is None or not hmac.compare_digest(key, _current_key):
        _current, _current_key = ReasoningSeal(key), key
    return _current
