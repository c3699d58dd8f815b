"""Token-forging helpers shared by the access tests (this folder is on sys.path)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

SIGNING_KEY = "test-signing-key-0123456789-abcdefghijklmnop"
NOW = 1_800_000_000


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def segment(value: Any) -> str:
    """A JSON value encoded the way a JWS segment is; strings are taken as raw JSON text."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return b64url(text.encode())


def hs256(signing_input: str, key: str = SIGNING_KEY) -> str:
    return b64url(hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest())
