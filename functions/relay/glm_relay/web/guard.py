"""What every guarded route checks before its endpoint runs: origin, reconnects, access token.

Two kinds of access token can be on at once: the relay's own (HS256, signed with its secret) and
an identity provider's (RS256, ES256, ... checked against its JWKS; on when
``ACCESS_TOKEN_ISSUER`` is set). The token's unverified header only picks the verifier: ``alg``
exactly ``HS256`` goes to the relay's own check, anything else to the provider's, and each then
refuses what it does not accept (an HS256 token "signed" with the provider's public key fails the
relay's HMAC; ``none`` is in neither list). The provider's module, and with it PyJWT and
``cryptography``, is imported only when a provider is configured.

Behind API Gateway with a Cognito user-pool authorizer (``TRUST_API_GATEWAY_AUTHORIZER``), API
Gateway has checked the caller before the function runs: a REST API event's caller is the
authorizer's ``sub``, and no token is read. Only that event shape is read so; a function URL
event is checked as always, whatever its ``requestContext`` holds.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from glm_relay.access import AccessClaims, AccessDenied, bearer_token, verify_access_token
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.jws import ALGORITHM, JWSError, unverified_header
from glm_relay.runtime import StreamingResponse, fixed_response
from glm_relay.web.headers import NO_STORE_HEADERS

if TYPE_CHECKING:
    from glm_relay.access.provider import ProviderVerifier
    from glm_relay.config import Settings
    from glm_relay.secrets import SecretSource
    from glm_relay.web.request import HttpRequest
    from glm_relay.web.routing import Exchange
    from glm_relay.web.telemetry import Telemetry

WWW_AUTHENTICATE = 'Bearer realm="glm-relay"'
# Longer than any token either verifier accepts: not worth decoding to pick one.
_LONGEST_ROUTED_TOKEN = 16 * 1024
# RFC 6750 section 3.1: a valid token without the scope or group the relay requires.
WWW_AUTHENTICATE_FORBIDDEN = 'Bearer realm="glm-relay", error="insufficient_scope"'


class Guard:
    """Admits a request to a guarded route, or answers for it.

    ``provider`` replaces the verifier that the settings describe (tests); otherwise it is built
    from the settings on the first request that needs it, once per container. ``resume`` serves
    a reconnect (``Last-Event-ID``) from the answer's record; without it a reconnect gets 204.
    """

    def __init__(
        self,
        settings: Settings,
        signing_key: SecretSource,
        *,
        provider: ProviderVerifier | None = None,
        telemetry: Telemetry | None = None,
        resume: Callable[[Exchange], Awaitable[StreamingResponse]] | None = None,
    ) -> None:
        self._settings = settings
        self._signing_key = signing_key
        self._telemetry = telemetry
        self._provider = provider
        self._provider_built = provider is not None
        self._provider_problem: str | None = None
        # The relay's own tokens are on whenever their signing key is configured.
        self._own_tokens = bool(settings.access_token_secret or settings.access_token_secret_id)
        self._resume = resume

    async def admit(self, exchange: Exchange) -> StreamingResponse | None:
        """``None`` when the endpoint may run (``exchange.claims`` filled in), else the answer."""
        request = exchange.request
        if not self._settings.origin_allowed(request.headers.get("origin")):
            raise RelayError(ErrorCode.ORIGIN_NOT_ALLOWED, "this origin may not call the relay")
        if "last-event-id" in request.headers:
            # A reconnect never pays for a second answer: the rest of a recorded one, or 204.
            if self._resume is None:
                return fixed_response(204, dict(NO_STORE_HEADERS))
            exchange.claims = await self.authenticate(request)
            return await self._resume(exchange)
        exchange.claims = await self.authenticate(request)
        return None

    async def authenticate(self, request: HttpRequest) -> AccessClaims | None:
        """The caller's verified claims; ``None`` when access tokens are switched off."""
        if self._settings.trust_api_gateway_authorizer and request.via_rest_api:
            from glm_relay.access.authorizer import authorizer_identity

            try:
                return authorizer_identity(request.authorizer_claims)
            except AccessDenied as denied:
                raise _unauthorized(denied) from None
        if not self._settings.require_access_token:
            return None
        token = bearer_token(request.headers, request.query)
        provider = self._configured_provider()
        if provider is not None and not (self._own_tokens and _is_hs256(token)):
            return await self._provider_claims(provider, token)
        return await self._own_claims(token)

    async def _own_claims(self, token: str | None) -> AccessClaims:
        key = self._settings.access_token_secret or await self._signing_key.fetch()
        try:
            return verify_access_token(token, key)
        except ValueError:
            # The signing key itself is unusable (too short, PEM): the deployment's fault.
            raise RelayError(
                ErrorCode.CONFIGURATION_ERROR, "the access-token signing key is unusable"
            ) from None
        except AccessDenied as denied:
            raise _unauthorized(denied) from None

    async def _provider_claims(self, provider: ProviderVerifier, token: str | None) -> AccessClaims:
        from glm_relay.access.jwks import IdentityProviderUnavailable
        from glm_relay.access.provider import ProviderForbidden

        try:
            return await provider.verify(token)
        except ProviderForbidden as forbidden:
            raise RelayError(
                ErrorCode.FORBIDDEN,
                forbidden.message,
                headers={"WWW-Authenticate": WWW_AUTHENTICATE_FORBIDDEN},
            ) from None
        except AccessDenied as denied:
            raise _unauthorized(denied) from None
        except IdentityProviderUnavailable as unavailable:
            self._warn("identity provider unavailable", unavailable.detail)
            raise RelayError(
                ErrorCode.IDENTITY_PROVIDER_UNAVAILABLE,
                unavailable.message,
                retry_after=unavailable.retry_after,
            ) from None
        except ValueError as broken:  # e.g. cryptography missing from the package
            self._warn("identity provider settings unusable", str(broken))
            raise RelayError(
                ErrorCode.CONFIGURATION_ERROR, "the identity provider settings are unusable"
            ) from None

    def _configured_provider(self) -> ProviderVerifier | None:
        """The container's provider verifier, ``None`` when no provider is configured."""
        if not self._provider_built:
            self._provider_built = True
            settings = self._settings
            if (
                settings.access_token_issuer
                or settings.access_token_audience
                or settings.access_token_jwks_url
            ):
                from glm_relay.access.provider import ProviderVerifier

                try:
                    self._provider = ProviderVerifier.from_settings(settings)
                except ValueError as broken:
                    self._provider_problem = str(broken)
        if self._provider_problem is not None:
            self._warn("identity provider settings unusable", self._provider_problem)
            raise RelayError(
                ErrorCode.CONFIGURATION_ERROR, "the identity provider settings are unusable"
            )
        return self._provider

    def _warn(self, what: str, detail: str) -> None:
        """Tell the operator why (URLs, statuses, setting names; never a token)."""
        if self._telemetry is not None:
            self._telemetry.logger.warning(what, extra={"detail": detail})


def _is_hs256(token: str | None) -> bool:
    """Whether the token's unverified header names exactly the relay's own algorithm."""
    if not token or len(token) > _LONGEST_ROUTED_TOKEN:
        return True  # nothing to route: the relay's own check says "missing" or "too large"
    try:
        return unverified_header(token).get("alg") == ALGORITHM
    except JWSError:
        return True  # malformed for either verifier; the relay's own check says so


def _unauthorized(denied: AccessDenied) -> RelayError:
    return RelayError(
        ErrorCode.UNAUTHORIZED, denied.message, headers={"WWW-Authenticate": WWW_AUTHENTICATE}
    )
