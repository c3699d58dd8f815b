"""The relay application: routes a request, validates it, decides the status, starts the stream.

One ``RelayApp`` lives per container (see ``handler.py``); it owns the cached credentials and the
pooled upstream client, so warm invocations reuse both.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from importlib import resources
from typing import Any

from glm_relay.access import AccessClaims, AccessDenied, bearer_token, verify_access_token
from glm_relay.config import Settings
from glm_relay.context import InvocationContext
from glm_relay.credentials import CredentialStore, SecretSource, secret_source
from glm_relay.errors import RelayError
from glm_relay.observability import Telemetry
from glm_relay.relay import ChatSession, Clocks, EventFramer, Outcome, RelayEvents
from glm_relay.request import HttpRequest
from glm_relay.response import StreamingResponse, fixed_response, single_chunk
from glm_relay.state import ANONYMOUS, NEW_CONVERSATION, UserState
from glm_relay.validation import ChatRequest, chat_from_body, chat_from_query
from glm_relay.zhipu import ZhipuClient

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # Tells nginx-style proxies not to buffer the stream.
    "X-Accel-Buffering": "no",
}
JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8", "Cache-Control": "no-store"}
PAGE_HEADERS = {
    "Content-Type": "text/html; charset=utf-8",
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    # The page loads nothing from elsewhere; its script and style are inline.
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src *; img-src data:; base-uri 'none'; form-action 'self'"
    ),
}
ROUTES: dict[str, tuple[str, ...]] = {
    "/": ("GET", "HEAD"),
    "/chat": ("GET", "POST"),
    "/conversations/": ("GET",),
    "/v1/chat/completions": ("POST",),
    "/v1/models": ("GET",),
}
CONVERSATION_PREFIX = "/conversations/"


class RelayApp:
    """Everything one container needs to serve requests.

    Example:
        app = RelayApp(Settings.from_env())
        response = await app.handle(event, context)
    """

    def __init__(self, settings: Settings, *, credentials: CredentialStore | None = None) -> None:
        self.settings = settings
        self.credentials = credentials or CredentialStore(
            secret_source(
                settings.zhipu_secret_id,
                source=settings.secrets_source,
                max_age_seconds=settings.secret_max_age_seconds,
            ),
            mode=settings.zhipu_auth_mode,
            ttl_seconds=settings.jwt_ttl_seconds,
            renew_before_seconds=settings.jwt_renew_before_seconds,
        )
        self.zhipu = ZhipuClient(settings, self.credentials)
        self._signing_key_source: SecretSource = secret_source(
            settings.access_token_secret_id,
            source=settings.secrets_source,
            max_age_seconds=settings.secret_max_age_seconds,
        )
        self.telemetry = Telemetry(log_content=settings.log_content)
        self.state = UserState(settings)
        self._page: bytes | None = None

    async def handle(self, event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
        """Serve one function-URL event."""
        request: HttpRequest | None = None
        try:
            request = HttpRequest.from_event(event, context.aws_request_id)
            response = await self._route(request, context)
        except RelayError as error:
            self.telemetry.request_done(
                request,
                status=error.status,
                outcome="rejected",
                error_code=error.code,
                request_id=context.aws_request_id,
            )
            return self.error_response(request, error, context.aws_request_id)
        except Exception as exc:
            # A bug: answer like any other failure rather than leaving the caller a bare 502.
            # Only the type is logged; a message could quote request content.
            failure = RelayError.of("internal_error", "the relay failed")
            self.telemetry.request_done(
                request,
                status=failure.status,
                outcome="failed",
                error_code=type(exc).__name__,
                request_id=context.aws_request_id,
            )
            return self.error_response(request, failure, context.aws_request_id)
        if not response.accounted:
            self.telemetry.request_done(request, status=response.status_code, outcome="served")
        return response

    async def _route(self, request: HttpRequest, context: InvocationContext) -> StreamingResponse:
        route = request.path
        if route.startswith(CONVERSATION_PREFIX) and len(route) > len(CONVERSATION_PREFIX):
            route = CONVERSATION_PREFIX
        methods = ROUTES.get(route)
        if methods is None:
            raise RelayError.of("not_found", "no such path")
        if request.method not in methods:
            error = RelayError.of(
                "method_not_allowed", f"{request.path} accepts {', '.join(methods)}"
            )
            error.headers["Allow"] = ", ".join(methods)
            raise error
        if request.path == "/":
            return self._page_response(request)
        if not self.settings.origin_allowed(request.headers.get("origin")):
            raise RelayError.of("origin_not_allowed", "this origin may not call the relay")
        if "last-event-id" in request.headers:
            # A browser reconnecting after the stream ended: never pay for a second answer.
            return fixed_response(204, {"Cache-Control": "no-store"})
        claims = await self.authenticate(request)
        if route == CONVERSATION_PREFIX:
            return await self._conversation(request, claims)
        if route.startswith("/v1/"):
            from glm_relay import openai_compat

            if route == "/v1/models":
                return openai_compat.models(self, request)
            return await openai_compat.chat_completions(self, request, context, claims)
        if request.method == "GET":
            chat = chat_from_query(request, self.settings)
        else:
            chat = chat_from_body(request, self.settings)
        return await self._chat(request, chat, context, claims)

    async def authenticate(self, request: HttpRequest) -> AccessClaims | None:
        """The caller's verified claims; ``None`` when access tokens are switched off."""
        if not self.settings.require_access_token:
            return None
        key = self.settings.access_token_secret or await self._signing_key_source.fetch()
        try:
            return verify_access_token(bearer_token(request.headers, request.query), key)
        except ValueError:
            # The signing key itself is unusable (too short, PEM): the deployment's fault.
            raise RelayError.of(
                "configuration_error", "the access-token signing key is unusable"
            ) from None
        except AccessDenied as denied:
            error = RelayError.of("unauthorized", denied.message)
            error.headers["WWW-Authenticate"] = 'Bearer realm="glm-relay"'
            raise error from None

    async def _chat(
        self,
        request: HttpRequest,
        chat: ChatRequest,
        context: InvocationContext,
        claims: AccessClaims | None,
    ) -> StreamingResponse:
        session = await self.start_chat(request, chat, context, claims)
        meta = {"request_id": request.request_id, "model": chat.model, **session.meta}
        body = session.body(RelayEvents(request.request_id, meta))
        headers = {**SSE_HEADERS, "X-Request-Id": request.request_id}
        return StreamingResponse(200, headers, body, accounted=True)

    async def start_chat(
        self,
        request: HttpRequest,
        chat: ChatRequest,
        context: InvocationContext,
        claims: AccessClaims | None,
    ) -> ChatSession:
        """Everything before the first byte: history, quota, the upstream stream.

        Any ``RelayError`` raised here is still an HTTP status; after it returns, the caller
        streams ``session.body(wire_format)``.
        """
        remaining = context.get_remaining_time_in_millis() - self.settings.deadline_margin_ms
        deadline = time.monotonic() + max(0, remaining) / 1000
        owner = claims.sub if claims else ANONYMOUS
        if claims is not None and claims.limits.max_tokens is not None:
            chat = chat.capped(claims.limits.max_tokens)
        meta: dict[str, Any] = {}
        if chat.conversation_id not in (None, NEW_CONVERSATION):
            chat = await self.state.with_history(chat, owner)
        admission = await self.state.admit(claims, chat)
        try:
            if chat.conversation_id == NEW_CONVERSATION:
                chat = replace(chat, conversation_id=await self.state.create(owner))
            upstream = await self.zhipu.open_stream(
                chat.upstream_body(request.request_id), deadline
            )
        except Exception:
            # Nothing was spent: give the reservation back (best effort, never masking why).
            await self.state.settle(claims, admission, None)
            raise
        if chat.conversation_id is not None:
            meta["conversation_id"] = chat.conversation_id
        outcome = Outcome(request.request_id, chat.model, attempts=upstream.attempts)

        async def completed(outcome: Outcome) -> None:
            self.telemetry.request_done(
                request,
                status=200,
                outcome=outcome.status,
                stream=outcome,
                subject=claims.sub if claims else None,
                question=chat.messages[-1]["content"],
            )
            await self.state.settle(claims, admission, outcome)
            if chat.conversation_id is not None:
                await self.state.save_turn(chat.conversation_id, owner, chat, outcome)

        clocks = Clocks(
            self.settings.keepalive_seconds, self.settings.idle_timeout_seconds, deadline
        )
        return ChatSession(upstream, outcome, clocks, completed, meta)

    async def _conversation(
        self, request: HttpRequest, claims: AccessClaims | None
    ) -> StreamingResponse:
        conversation_id = request.path[len(CONVERSATION_PREFIX) :]
        owner = claims.sub if claims else ANONYMOUS
        history = await self.state.history(conversation_id, owner)
        payload = json.dumps(history, ensure_ascii=False).encode()
        headers = {**JSON_HEADERS, "X-Request-Id": request.request_id}
        return fixed_response(200, headers, payload)

    def _page_response(self, request: HttpRequest) -> StreamingResponse:
        if self._page is None:
            self._page = resources.files("glm_relay").joinpath("static/index.html").read_bytes()
        if request.method == "HEAD":
            return fixed_response(200, PAGE_HEADERS)
        return fixed_response(200, PAGE_HEADERS, self._page)

    def error_response(
        self, request: HttpRequest | None, error: RelayError, request_id: str = ""
    ) -> StreamingResponse:
        """An error known before streaming: JSON with its status, or one SSE event for
        EventSource (which cannot read the body of a non-200 answer); OpenAI's shape on /v1."""
        if request is not None and request.path.startswith("/v1/"):
            from glm_relay import openai_compat

            return openai_compat.error_response(request, error)
        if request is not None and request.wants_event_stream and request.method == "GET":
            # The same numbering and encoding as a streamed answer's terminal event.
            frame = EventFramer(request.request_id).frame("error", error.event_data())
            headers = {**SSE_HEADERS, "X-Request-Id": request.request_id}
            return StreamingResponse(200, headers, single_chunk(frame))
        headers = {**JSON_HEADERS, **error.response_headers(), "X-Request-Id": request_id}
        if request is not None:
            headers["X-Request-Id"] = request.request_id
        return fixed_response(error.status, headers, error.to_json())
