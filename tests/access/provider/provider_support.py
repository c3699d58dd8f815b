"""A local identity provider for the provider-token tests: signing keys, a JWKS server, a clock.

The server is a real HTTP server on a loopback port, so the verifier's own httpx fetch is what
the tests exercise. It counts the requests per path, and can be told to fail, stall or serve
something that is not a key set.
"""

from __future__ import annotations

import functools
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from access_support import b64url, hs256, segment
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from jwt.algorithms import ECAlgorithm, OKPAlgorithm, RSAAlgorithm

from glm_relay.access import AccessDenied
from glm_relay.access.jwks import IdentityProviderUnavailable
from glm_relay.access.provider import ProviderVerifier

NOW = 1_800_000_000
ISSUER = "https://idp.example.test/"
AUDIENCE = "glm-relay-api"
JWKS_PATH = "/.well-known/jwks.json"
DISCOVERY_PATH = "/.well-known/openid-configuration"

MakeVerifier = Callable[..., ProviderVerifier]


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SigningKey:
    """A provider's key pair: signs tokens, and shows its public half as a JWK."""

    kid: str | None
    alg: str
    private_key: Any
    jwk_extra: dict[str, Any] = field(default_factory=dict)

    def jwk(self, **changes: Any) -> dict[str, Any]:
        """The public JWK as a provider publishes it (``None`` in ``changes`` drops a member)."""
        public = self.private_key.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            data = RSAAlgorithm.to_jwk(public, as_dict=True)
        elif isinstance(public, ec.EllipticCurvePublicKey):
            data = ECAlgorithm.to_jwk(public, as_dict=True)
        else:
            data = OKPAlgorithm.to_jwk(public, as_dict=True)
        data.update({"use": "sig", "alg": self.alg})
        if self.kid is not None:
            data["kid"] = self.kid
        data.update(self.jwk_extra)
        data.update(changes)
        return {name: value for name, value in data.items() if value is not None}

    def sign(
        self,
        payload: dict[str, Any],
        *,
        alg: str | None = None,
        kid: str | None = "",
        headers: dict[str, Any] | None = None,
    ) -> str:
        """A token signed with this key; ``kid=""`` means this key's own kid, ``None`` none."""
        header: dict[str, Any] = dict(headers or {})
        chosen_kid = self.kid if kid == "" else kid
        if chosen_kid is not None:
            header["kid"] = chosen_kid
        return jwt.encode(payload, self.private_key, algorithm=alg or self.alg, headers=header)

    def public_pem(self) -> str:
        return (
            self.private_key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )


@functools.cache
def _rsa(name: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@functools.cache
def _ec(curve_name: str) -> ec.EllipticCurvePrivateKey:
    curve = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1(), "P-521": ec.SECP521R1()}
    return ec.generate_private_key(curve[curve_name])


@functools.cache
def _ed25519() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


def rsa_key(kid: str | None = "rsa-1", alg: str = "RS256", *, seed: str = "", bits: int = 2048):
    """An RSA key; the same ``kid`` (or ``seed``) gives the same key pair within a run."""
    return SigningKey(kid, alg, _rsa(seed or str(kid), bits))


def ec_key(kid: str | None = "ec-1", alg: str = "ES256") -> SigningKey:
    curve = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}[alg]
    return SigningKey(kid, alg, _ec(curve))


def ed25519_key(kid: str | None = "ed-1") -> SigningKey:
    return SigningKey(kid, "EdDSA", _ed25519())


def unsigned_token(payload: dict[str, Any], header: dict[str, Any]) -> str:
    """A token with an empty signature (what ``alg: none`` looks like)."""
    return f"{segment(header)}.{segment(payload)}."


def hmac_token(payload: dict[str, Any], secret: str, header: dict[str, Any]) -> str:
    """A token HMAC-signed with ``secret``: the algorithm-confusion forgery when it is a PEM."""
    signing_input = f"{segment(header)}.{segment(payload)}"
    return f"{signing_input}.{hs256(signing_input, secret)}"


def b64_json(value: Any) -> str:
    return b64url(json.dumps(value).encode())


class IdentityProvider:
    """A JWKS (and discovery) endpoint on 127.0.0.1, in a thread.

    ``keys`` is what the key set serves; ``status``, ``body`` and ``delay`` make it misbehave;
    ``hits`` counts requests per path.
    """

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.body: bytes | None = None
        self.delay = 0.0
        self.discovery: dict[str, Any] | None = None
        self.hits: Counter[str] = Counter()
        self._lock = threading.Lock()
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider._answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.jwks_url = self.base_url + JWKS_PATH
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def publish(self, *keys: SigningKey) -> None:
        self.keys = [key.jwk() for key in keys]

    def jwks_hits(self) -> int:
        with self._lock:
            return self.hits[JWKS_PATH]

    def _answer(self, request: BaseHTTPRequestHandler) -> None:
        path = request.path.split("?", 1)[0]
        with self._lock:
            self.hits[path] += 1
        if self.delay:
            time.sleep(self.delay)
        if path == JWKS_PATH:
            document: Any = {"keys": self.keys}
        elif path.endswith(DISCOVERY_PATH) and self.discovery is not None:
            document = self.discovery
        else:
            request.send_response(404)
            request.send_header("Content-Length", "0")
            request.end_headers()
            return
        body = self.body if self.body is not None else json.dumps(document).encode()
        request.send_response(self.status)
        request.send_header("Content-Type", "application/json")
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    @contextmanager
    def running(self) -> Iterator[IdentityProvider]:
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()


async def denied(verifier: ProviderVerifier, token: Any) -> str:
    """The refusal message, after checking it never echoes the token."""
    with pytest.raises(AccessDenied) as caught:
        await verifier.verify(token)
    message = caught.value.message
    assert str(caught.value) == message
    if isinstance(token, str) and len(token) > 8:
        for part in token.split("."):
            if len(part) > 8:
                assert part not in message
    return message


async def unavailable(verifier: ProviderVerifier, token: str) -> IdentityProviderUnavailable:
    with pytest.raises(IdentityProviderUnavailable) as caught:
        await verifier.verify(token)
    error = caught.value
    assert not isinstance(error, AccessDenied)  # a 503 for the relay, never a 401
    assert error.message == "identity provider unavailable" == str(error)
    assert error.code == "identity_provider_unavailable"
    assert error.status == 503 and error.retryable
    assert token.split(".")[1] not in error.detail
    return error
