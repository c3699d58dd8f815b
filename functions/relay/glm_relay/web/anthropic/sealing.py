"""Sealed reasoning: a model's reasoning text in an opaque string only this relay can open.

A ``thinking`` block's ``signature`` is such a string, so a client can send the block back with
the next turn and the relay replays the reasoning to Zhipu (GLM-5.1 and later refuse a tool-call
turn without it) without trusting text a client could have changed: altered, truncated or foreign
strings open to ``None``. The format: ``glmr1.`` + base64url(text) + ``.`` + base64url(HMAC-SHA256
of the version and the text, 16 bytes), keyed by a key derived from the relay's secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets

PREFIX = "glmr1."
_MAC_BYTES = 16
_KEY_CONTEXT = b"glm-relay sealed reasoning v1"


class ReasoningSeal:
    """Seals and opens reasoning under one key.

    Example:
        seal = ReasoningSeal.from_secret("the relay's signing secret")
        token = seal.seal("I should read the file first.")
        seal.open(token)  # "I should read the file first."
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_secret(cls, secret: str | None) -> ReasoningSeal:
        """A seal keyed from ``secret``; without one, a key of this container only (a block
        then opens only in the container that sealed it, and is dropped elsewhere)."""
        material = secret.encode() if secret else secrets.token_bytes(32)
        return cls(hmac.new(material, _KEY_CONTEXT, hashlib.sha256).digest())

    def seal(self, text: str) -> str:
        data = text.encode("utf-8", "surrogatepass")
        return PREFIX + _b64(data) + "." + _b64(self._mac(data))

    def open(self, token: str) -> str | None:
        """The sealed text, or ``None`` when ``token`` was not sealed with this key."""
        if not token.startswith(PREFIX) or token.count(".") != 2:
            return None
        body, mac = token[len(PREFIX) :].split(".")
        try:
            data, given = _unb64(body), _unb64(mac)
            if not hmac.compare_digest(given, self._mac(data)):
                return None
            return data.decode("utf-8")
        except (binascii.Error, ValueError):
            return None

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, PREFIX.encode() + data, hashlib.sha256).digest()[:_MAC_BYTES]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
