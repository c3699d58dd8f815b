"""What every guarded route checks before its endpoint runs: origin, reconnects, access token."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from glm_relay.access import AccessClaims, AccessDenied, bearer_token, verify_access_token
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import StreamingResponse, fixed_response
from glm_relay.web.headers import NO_STORE_HEADERS

if TYPE_CHECKING:
    from glm_relay.config import Settings
    from glm_relay.secrets import SecretSource
    from glm_relay.web.request import HttpRequest
    from glm_relay.web.routing import Exchange

WWW_AUTHENTICATE = 'Bearer realm="glm-relay"'


class Guard:
    """Admits a request to a guarded route, or answers for it."""

    def __init__(
        self,
        settings: Settings,
        signing_key: SecretSource,
        resume: Callable[[Exchange], Awaitable[StreamingResponse]] | None = None,
    ) -> None:
        self._settings = settings
        self._signing_key = signing_key
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
        settings = self._settings
        if not settings.require_access_token:
            return None
        key = settings.access_token_secret or await self._signing_key.fetch()
        try:
            return verify_access_token(bearer_token(request.headers, request.query), key)
        except ValueError:
            # The signing key itself is unusable (too short, PEM): the deployment's fault.
            raise RelayError(
                ErrorCode.CONFIGURATION_ERROR, "the access-token signing key is unusable"
            ) from None
        except AccessDenied as denied:
            raise RelayError(
                ErrorCode.UNAUTHORIZED,
                denied.message,
                headers={"WWW-Authenticate": WWW_AUTHENTICATE},
            ) from None
