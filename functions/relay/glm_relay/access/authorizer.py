"""The caller as an API Gateway Cognito user-pool authorizer names it.

With the authorizer on, API Gateway has checked the user's token before the function runs and
passes the token's claims in the REST proxy event (``requestContext.authorizer.claims``, every
value a string). The event comes from API Gateway, not from the caller, so those claims can be
believed, but only for that front door and only when the deployment says an authorizer is there
(``TRUST_API_GATEWAY_AUTHORIZER``): the web guard decides that; this module only reads the claims.

Example:
    claims = authorizer_identity({"sub": "6b1c...", "exp": "Tue Mar 10 17:21:05 UTC 2026"})
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from glm_relay.access.tokens import AccessClaims, AccessDenied, valid_subject

# How API Gateway writes a Cognito NumericDate claim (exp, iat) into the authorizer context.
_AUTHORIZER_DATE = "%a %b %d %H:%M:%S UTC %Y"


def authorizer_identity(claims: Mapping[str, Any] | None) -> AccessClaims:
    """The user is the authorizer's ``sub`` (quotas, conversations); no claims is a refusal.

    >>> authorizer_identity({"sub": "user-1", "exp": "1767225600"}).expires_at
    1767225600
    """
    if not claims:
        raise AccessDenied("no identity from the API Gateway authorizer")
    sub = claims.get("sub")
    if not isinstance(sub, str) or not valid_subject(sub):
        raise AccessDenied("the API Gateway authorizer gave no usable sub claim")
    return AccessClaims(sub=sub, expires_at=_expiry(claims.get("exp")))


def _expiry(value: object) -> int:
    """``exp`` as epoch seconds: a number, or API Gateway's date text; 0 when unreadable (API
    Gateway refused an expired token already, so this is information only)."""
    text = str(value or "").strip()
    if text.isdigit():
        return int(text)
    try:
        parsed = datetime.strptime(text, _AUTHORIZER_DATE).replace(tzinfo=UTC)
    except ValueError:
        return 0
    return math.floor(parsed.timestamp())
