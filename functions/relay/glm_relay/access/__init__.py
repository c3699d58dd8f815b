"""Who may call: the relay's own access tokens (HS256, minted by ``python -m glm_relay token``).

An identity provider's tokens are checked by :mod:`glm_relay.access.provider`, which is not
imported here: it loads PyJWT and ``cryptography`` on first use, and only a relay with a provider
configured needs them.

Example:
    claims = verify_access_token(bearer_token(headers, query), signing_key)
"""

from glm_relay.access.tokens import (
    ALGORITHM,
    ISSUER,
    MAX_LIMIT_VALUE,
    MAX_SUB_LENGTH,
    MAX_TOKEN_BYTES,
    MIN_KEY_BYTES,
    AccessClaims,
    AccessDenied,
    TokenLimits,
    bearer_token,
    mint_access_token,
    valid_subject,
    verify_access_token,
)

__all__ = [
    "ALGORITHM",
    "ISSUER",
    "MAX_LIMIT_VALUE",
    "MAX_SUB_LENGTH",
    "MAX_TOKEN_BYTES",
    "MIN_KEY_BYTES",
    "AccessClaims",
    "AccessDenied",
    "TokenLimits",
    "bearer_token",
    "mint_access_token",
    "valid_subject",
    "verify_access_token",
]
