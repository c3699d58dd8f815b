"""What a provider's verified token must say: issuer, audience, times, user, scopes and groups.

:class:`ClaimRules` holds the claim settings of one provider and turns a payload whose signature
was checked into the relay's :class:`~glm_relay.access.AccessClaims`. Kept apart from the key
handling so each can be read (and tested) on its own.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

from glm_relay.access.tokens import MAX_SUB_LENGTH, AccessClaims, AccessDenied, TokenLimits

__all__ = ["HASHED_ID_PREFIX", "MAX_SUBJECT_PREFIX", "ClaimRules", "ProviderForbidden"]

# User ids longer than MAX_SUB_LENGTH are replaced by this prefix and their SHA-256.
HASHED_ID_PREFIX = "sha256:"
MAX_SUBJECT_PREFIX = 32
DEFAULT_LEEWAY_SECONDS = 60.0

_COGNITO_ISSUER = re.compile(r"https://cognito-idp\.[a-z0-9-]+\.amazonaws\.com/[A-Za-z0-9_-]+")
# Larger than any real date, small enough to stay exact in a double (as in access.tokens).
_MAX_NUMERIC_DATE = 2**53 - 1
_MISSING = object()


class ProviderForbidden(AccessDenied):
    """A valid token that lacks a required scope or group: answer 403, not 401."""

    code = "forbidden"


class ClaimRules:
    """One provider's claim settings, checked when built; ``ValueError`` for unusable ones.

    ``group_claim`` defaults to ``cognito:groups`` for a Cognito issuer, else ``groups``.
    ``client_id_audience`` (accept a Cognito access token's ``client_id`` as its audience)
    defaults to whether the issuer is a Cognito user pool.
    """

    def __init__(
        self,
        *,
        issuer: str,
        audience: str | Iterable[str],
        leeway_seconds: float = DEFAULT_LEEWAY_SECONDS,
        user_claim: str = "sub",
        subject_prefix: str = "",
        required_scopes: Iterable[str] = (),
        required_groups: Iterable[str] = (),
        group_claim: str | None = None,
        client_id_audience: bool | None = None,
    ) -> None:
        if not isinstance(issuer, str) or not issuer:
            raise ValueError("the identity provider's issuer is empty")
        audiences = (audience,) if isinstance(audience, str) else tuple(audience)
        if not audiences or not all(isinstance(a, str) and a for a in audiences):
            raise ValueError("at least one non-empty audience is required")
        if not is_number(leeway_seconds) or not 0 <= leeway_seconds <= 3600:
            raise ValueError("leeway_seconds must be between 0 and 3600")
        if not isinstance(user_claim, str) or not user_claim:
            raise ValueError("the user claim name is empty")
        if len(subject_prefix) > MAX_SUBJECT_PREFIX or not subject_prefix.isprintable():
            raise ValueError(
                f"subject_prefix must be printable and at most {MAX_SUBJECT_PREFIX} characters"
            )
        is_cognito = _COGNITO_ISSUER.fullmatch(issuer) is not None
        self.issuer = issuer
        self.audiences = audiences
        self.leeway_seconds = float(leeway_seconds)
        self.user_claim = user_claim
        self.subject_prefix = subject_prefix
        self.required_scopes = _names(required_scopes, "required scope")
        self.required_groups = _names(required_groups, "required group")
        self.group_claim = group_claim or ("cognito:groups" if is_cognito else "groups")
        self.client_id_audience = is_cognito if client_id_audience is None else client_id_audience

    def claims(self, payload: Mapping[str, Any], now: float) -> AccessClaims:
        """Who and until when first, then the clock, then what the caller may do."""
        if "iss" not in payload:
            raise AccessDenied("missing claim: iss")
        if payload["iss"] != self.issuer:
            raise AccessDenied("wrong issuer")
        self._check_audience(payload)
        if "exp" not in payload:
            raise AccessDenied("missing claim: exp")
        for name in ("exp", "nbf", "iat"):
            if name in payload and not _is_numeric_date(payload[name]):
                raise AccessDenied(f"invalid claim: {name}")
        exp = payload["exp"]
        nbf = payload.get("nbf")
        sub = self._subject(payload)

        if now >= exp + self.leeway_seconds:
            raise AccessDenied("token expired")
        if nbf is not None and now < nbf - self.leeway_seconds:
            raise AccessDenied("token not yet valid")

        if self.required_scopes and not set(self.required_scopes) <= _scopes(payload):
            raise ProviderForbidden("missing required scope")
        if self.required_groups and not set(self.required_groups) & self._groups(payload):
            raise ProviderForbidden("missing required group")
        return AccessClaims(sub=sub, expires_at=math.floor(exp), limits=TokenLimits())

    def _check_audience(self, payload: Mapping[str, Any]) -> None:
        if "aud" in payload:
            aud = payload["aud"]
            named = [aud] if isinstance(aud, str) else aud
            if not isinstance(named, list) or not all(isinstance(a, str) for a in named):
                raise AccessDenied("invalid claim: aud")
            if not set(named) & set(self.audiences):
                raise AccessDenied("wrong audience")
            return
        # Cognito access tokens name the app client in client_id and carry no aud.
        if self.client_id_audience and payload.get("token_use") == "access":
            client_id = payload.get("client_id")
            if not isinstance(client_id, str):
                raise AccessDenied("missing claim: client_id")
            if client_id not in self.audiences:
                raise AccessDenied("wrong audience")
            return
        raise AccessDenied("missing claim: aud")

    def _subject(self, payload: Mapping[str, Any]) -> str:
        """The quota and conversation owner: the prefix, then the user claim (hashed if long)."""
        value = _claim(payload, self.user_claim)
        if value is _MISSING or value is None:
            raise AccessDenied(f"missing claim: {self.user_claim}")
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value or not value.isprintable():
            raise AccessDenied(f"invalid claim: {self.user_claim}")
        sub = self.subject_prefix + value
        if len(sub) > MAX_SUB_LENGTH:
            digest = hashlib.sha256(value.encode("utf-8")).hexdigest()
            sub = f"{self.subject_prefix}{HASHED_ID_PREFIX}{digest}"
        return sub

    def _groups(self, payload: Mapping[str, Any]) -> set[str]:
        value = _claim(payload, self.group_claim)
        if isinstance(value, str):
            return {value}
        if isinstance(value, list):
            return {group for group in value if isinstance(group, str)}
        return set()


def _claim(payload: Mapping[str, Any], name: str) -> Any:
    """A claim by name; a dotted name not present as such is a path into nested objects.

    ``https://example.com/user_id`` (a namespaced claim) is found as it is;
    ``realm_access.roles`` is ``payload["realm_access"]["roles"]``.
    """
    if name in payload:
        return payload[name]
    if "." not in name:
        return _MISSING
    value: Any = payload
    for part in name.split("."):
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _scopes(payload: Mapping[str, Any]) -> set[str]:
    """Scopes from ``scope`` (RFC 8693: space-separated) and ``scp`` (string or list)."""
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = payload.get(name)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list):
            granted.update(item for item in value if isinstance(item, str))
    return granted


def _names(values: Iterable[str], what: str) -> tuple[str, ...]:
    names = (values,) if isinstance(values, str) else tuple(values)
    for name in names:
        if not isinstance(name, str) or not name or name != name.strip():
            raise ValueError(f"a {what} must be a non-empty name without surrounding spaces")
    return names


def is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_numeric_date(value: object) -> bool:
    return is_number(value) and 0 <= value <= _MAX_NUMERIC_DATE
