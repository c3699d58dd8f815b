"""Access tokens issued by an external identity provider (OIDC), checked against its JWKS.

The relay's own tokens (:mod:`glm_relay.access.tokens`) are HS256 and minted with a shared
secret. A provider such as Cognito, Auth0, Okta or Keycloak signs with a private key and
publishes the public keys as a JWK Set (:mod:`glm_relay.access.jwks`). :class:`ProviderVerifier`
checks such a token and returns the same :class:`~glm_relay.access.AccessClaims` the rest of the
relay uses, so quotas and conversations work unchanged (the provider's user id, with an optional
prefix, becomes ``sub``; no per-token limits).

What is checked, in this order (the first failure is the reason given):

1. Shape: a compact JWS of at most :data:`MAX_TOKEN_BYTES`, no ``crit`` or ``b64`` header.
2. Algorithm: the header's ``alg`` must be one of the configured asymmetric algorithms, so
   ``none`` and HS256 (a token "signed" with the provider's public key as an HMAC secret) are
   refused before any key is looked at, and nothing is fetched for them.
3. Key: the JWK whose ``kid`` matches the header's (or, for a token without ``kid``, the only
   key in the set usable for the algorithm), suited to the algorithm and bound to it. Keys
   carried in the token's own header (``jwk``, ``jku``, ``x5u``) are never used.
4. Signature, then claims: ``iss`` equals the issuer; ``aud`` names one of the audiences
   (Cognito access tokens carry ``client_id`` instead); ``exp`` is required, ``nbf`` honoured,
   both with ``leeway_seconds``; the user claim is present.
5. Authorisation: the required scopes (all, from ``scope`` or ``scp``) and groups (any one).
   Missing ones raise :class:`ProviderForbidden`, whose ``code`` is ``"forbidden"`` (403: the
   caller is known but may not use the relay).

Every message is safe to show and to log: it never contains the token. A bad configuration
raises ``ValueError`` when the verifier is built. PyJWT (and with it ``cryptography``) and httpx
are imported on the first verification, never with this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from glm_relay.access.claims import (
    DEFAULT_LEEWAY_SECONDS,
    ClaimRules,
    ProviderForbidden,
    is_number,
)
from glm_relay.access.jwks import (
    DEFAULT_ALGORITHMS,
    DEFAULT_FETCH_TIMEOUT_SECONDS,
    KEY_SHAPE,
    Fetch,
    KeySet,
    check_url,
)
from glm_relay.access.tokens import AccessClaims, AccessDenied, checked_token
from glm_relay.jws import MalformedToken, unverified_header

if TYPE_CHECKING:
    from glm_relay.config import Settings

__all__ = ["MAX_TOKEN_BYTES", "ProviderForbidden", "ProviderVerifier"]

# Provider tokens are bigger than the relay's own (groups, scopes, namespaced claims), but a
# token still travels in a header or a query string.
MAX_TOKEN_BYTES = 8192


class ProviderVerifier:
    """Verifies an identity provider's access tokens; one instance per container.

    Example (Cognito, keys found through discovery)::

        verifier = ProviderVerifier(
            issuer="https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
            audience="4b1sfj0p5n1ojmnp0bcnnr6jrq",
            required_scopes=("glm-relay/chat",),
        )
        claims = await verifier.verify(bearer_token(headers, query))
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Sequence[str],
        jwks_url: str | None = None,
        algorithms: Sequence[str] = DEFAULT_ALGORITHMS,
        leeway_seconds: float = DEFAULT_LEEWAY_SECONDS,
        user_claim: str = "sub",
        subject_prefix: str = "",
        required_scopes: Iterable[str] = (),
        required_groups: Iterable[str] = (),
        group_claim: str | None = None,
        client_id_audience: bool | None = None,
        fetch: Fetch | None = None,
        clock: Callable[[], float] = time.time,
        fetch_timeout_seconds: float = DEFAULT_FETCH_TIMEOUT_SECONDS,
        **key_set_options: float,
    ) -> None:
        """Check and keep the configuration; raises ``ValueError`` for anything unusable.

        The claim settings go to :class:`~glm_relay.access.claims.ClaimRules`;
        ``key_set_options`` are :class:`~glm_relay.access.jwks.KeySet`'s intervals
        (``refresh_interval_seconds``, ``retry_interval_seconds``, ``max_age_seconds``).
        """
        self.rules = ClaimRules(
            issuer=issuer,
            audience=audience,
            leeway_seconds=leeway_seconds,
            user_claim=user_claim,
            subject_prefix=subject_prefix,
            required_scopes=required_scopes,
            required_groups=required_groups,
            group_claim=group_claim,
            client_id_audience=client_id_audience,
        )
        if jwks_url is None:
            check_url(issuer, "issuer (used for discovery when no JWKS URL is given)")
        else:
            check_url(jwks_url, "JWKS URL")
        algs = tuple(algorithms)
        if not algs:
            raise ValueError("at least one algorithm is required")
        for alg in algs:
            if alg not in KEY_SHAPE:
                raise ValueError(
                    f"algorithm {alg!r} is not allowed for provider tokens; "
                    f"choose from {', '.join(DEFAULT_ALGORITHMS)}"
                )
        intervals = {"fetch_timeout_seconds": fetch_timeout_seconds, **key_set_options}
        for name, value in intervals.items():
            if not is_number(value) or value <= 0:
                raise ValueError(f"{name} must be a positive number")
        self.algorithms = algs
        self._clock = clock
        self.keys = KeySet(
            issuer=issuer,
            jwks_url=jwks_url,
            fetch=fetch,
            clock=clock,
            fetch_timeout_seconds=fetch_timeout_seconds,
            **key_set_options,
        )

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ProviderVerifier | None:
        """The verifier the ``ACCESS_TOKEN_*`` provider settings describe, ``None`` when off.

        The provider is on when an issuer is set; it then needs an audience. Scopes may be
        separated by commas or spaces. ``overrides`` reach the constructor as they are (tests
        inject ``fetch`` and ``clock`` this way). Raises ``ValueError`` for unusable settings.
        """
        if not settings.access_token_issuer:
            if settings.access_token_jwks_url or settings.access_token_audience:
                raise ValueError(
                    "ACCESS_TOKEN_ISSUER is required with ACCESS_TOKEN_JWKS_URL or _AUDIENCE"
                )
            return None
        if not settings.access_token_audience:
            raise ValueError("ACCESS_TOKEN_AUDIENCE is required with ACCESS_TOKEN_ISSUER")
        options: dict[str, Any] = {
            "issuer": settings.access_token_issuer,
            "audience": settings.access_token_audience,
            "jwks_url": settings.access_token_jwks_url or None,
            "algorithms": settings.access_token_algorithms or DEFAULT_ALGORITHMS,
            "leeway_seconds": settings.access_token_leeway_seconds,
            "user_claim": settings.access_token_user_claim,
            "subject_prefix": settings.access_token_subject_prefix,
            "required_scopes": [
                scope for item in settings.access_token_required_scope for scope in item.split()
            ],
            "required_groups": settings.access_token_required_group,
            "group_claim": settings.access_token_group_claim or None,
        }
        options.update(overrides)
        return cls(**options)

    async def verify(self, token: str | None) -> AccessClaims:
        """Check ``token`` and return what it grants.

        Raises :class:`~glm_relay.access.AccessDenied` (or its :class:`ProviderForbidden`) for
        anything about the token, :class:`~glm_relay.access.jwks.IdentityProviderUnavailable`
        when the keys cannot be fetched, and ``ValueError`` when ``cryptography`` is missing.
        """
        token = checked_token(token, MAX_TOKEN_BYTES)
        header = _header(token)
        alg = header["alg"]
        if alg not in self.algorithms:
            raise AccessDenied("algorithm not allowed")
        key = await self.keys.key_for(header.get("kid"), alg)
        payload = _verified_payload(token, key, alg)
        return self.rules.claims(payload, self._clock())


def _header(token: str) -> dict[str, Any]:
    """The token's JOSE header (unverified), with a string ``alg`` and no extensions."""
    try:
        header = unverified_header(token)
    except MalformedToken:
        raise AccessDenied("malformed token") from None
    if not isinstance(header.get("alg"), str) or "crit" in header or "b64" in header:
        raise AccessDenied("malformed token")
    return header


def _verified_payload(token: str, key: Any, alg: str) -> dict[str, Any]:
    """Signature (PyJWT, with the key bound to ``alg``); claims are checked by the caller."""
    import jwt

    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=[alg],
            options={
                "verify_signature": True,
                "enforce_minimum_key_length": True,
                "require": [],
                # Claims are checked by the verifier, against its injectable clock.
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_iss": False,
                "verify_aud": False,
                "verify_sub": False,
                "verify_jti": False,
            },
        )
    except jwt.InvalidSignatureError:
        raise AccessDenied("bad signature") from None
    except jwt.InvalidAlgorithmError:
        raise AccessDenied("algorithm not allowed") from None
    except jwt.InvalidKeyError:
        raise AccessDenied("signing key too weak") from None
    except jwt.DecodeError:
        raise AccessDenied("malformed token") from None
    except jwt.PyJWTError:
        raise AccessDenied("invalid token") from None
    except (ValueError, TypeError, RecursionError):
        raise AccessDenied("malformed token") from None
    return payload
