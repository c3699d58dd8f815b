"""The HTTP front door: one route table, one place for request ids, errors and summary lines.

Example:
    app = WebApp(Settings.from_env())
    response = await app.handle(event, context)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.web.chat_api import ChatEndpoints, chat_error
from glm_relay.web.cors import add_cors_headers, is_preflight, preflight
from glm_relay.web.documents import ConversationEndpoint, PageEndpoint, UsageEndpoint
from glm_relay.web.guard import Guard
from glm_relay.web.headers import REQUEST_ID_HEADER
from glm_relay.web.openai_errors import openai_error
from glm_relay.web.request import HttpRequest
from glm_relay.web.resume import ResumableStreams
from glm_relay.web.routing import ErrorFormat, Exchange, Route, RouteGroup, Router
from glm_relay.web.services import Services

if TYPE_CHECKING:
    from glm_relay.config import Settings
    from glm_relay.runtime import InvocationContext, StreamingResponse
    from glm_relay.upstream import CredentialStore
    from glm_relay.web.openai_api import OpenAIEndpoints
    from glm_relay.web.responses import ResponsesEndpoints


def build_router(settings: Settings, services: Services) -> Router:
    """Every route the relay serves, grouped by error format."""
    page = PageEndpoint()
    chat = ChatEndpoints(settings, services.chats)
    conversation = ConversationEndpoint(services.state)
    openai = _LazyOpenAI(settings, services)
    relay_routes = (
        Route("/", {"GET": page.get, "HEAD": page.head}, guarded=False),
        Route("/chat", {"GET": chat.get, "POST": chat.post}),
        Route("/conversations/{id}", {"GET": conversation.get}),
        Route("/usage", {"GET": UsageEndpoint(services.state).get}),
    )
    openai_routes = (
        Route("/v1/chat/completions", {"POST": openai.chat_completions}),
        Route("/v1/models", {"GET": openai.models}),
        Route("/v1/models/{id}", {"GET": openai.model}),
        Route("/v1/responses", {"POST": openai.create_response}),
        Route("/v1/responses/{id}", {"GET": openai.get_response, "DELETE": openai.delete_response}),
    )
    return Router(
        (
            RouteGroup("", chat_error, relay_routes),
            RouteGroup("/v1/", openai_error, openai_routes),
        )
    )


class _LazyOpenAI:
    """The ``/v1`` endpoints, imported on the first ``/v1`` request: a container that only
    serves ``/chat`` never loads them (cold start); the Responses API on its first request."""

    def __init__(self, settings: Settings, services: Services) -> None:
        self._settings = settings
        self._services = services
        self._endpoints: OpenAIEndpoints | None = None
        self._responses_endpoints: ResponsesEndpoints | None = None

    def _loaded(self) -> OpenAIEndpoints:
        if self._endpoints is None:
            from glm_relay.web.openai_api import OpenAIEndpoints

            self._endpoints = OpenAIEndpoints(self._settings, self._services.chats)
        return self._endpoints

    async def chat_completions(self, exchange: Exchange) -> StreamingResponse:
        return await self._loaded().chat_completions(exchange)

    async def models(self, exchange: Exchange) -> StreamingResponse:
        return await self._loaded().models(exchange)

    async def model(self, exchange: Exchange) -> StreamingResponse:
        return await self._loaded().model(exchange)

    def _responses(self) -> ResponsesEndpoints:
        if self._responses_endpoints is None:
            from glm_relay.web.responses import ResponsesEndpoints

            services = self._services
            self._responses_endpoints = ResponsesEndpoints(
                self._settings, services.chats, services.state, services.credentials
            )
        return self._responses_endpoints

    async def create_response(self, exchange: Exchange) -> StreamingResponse:
        return await self._responses().create(exchange)

    async def get_response(self, exchange: Exchange) -> StreamingResponse:
        return await self._responses().get(exchange)

    async def delete_response(self, exchange: Exchange) -> StreamingResponse:
        return await self._responses().delete(exchange)


class WebApp:
    """Reads the event, finds the route, guards it, and answers; never raises."""

    def __init__(
        self,
        settings: Settings,
        *,
        services: Services | None = None,
        credentials: CredentialStore | None = None,
    ) -> None:
        self.settings = settings
        self.services = services or Services.from_settings(settings, credentials=credentials)
        self.telemetry = self.services.telemetry
        self.router = build_router(settings, self.services)
        self.streams = ResumableStreams(settings, self.services.journal)
        resume = self.streams.resume if self.streams.journal is not None else None
        self.guard = Guard(
            settings, self.services.signing_key, resume=resume, telemetry=self.telemetry
        )

    async def handle(self, event: dict[str, Any], context: InvocationContext) -> StreamingResponse:
        """Serve one event: the response, with ``X-Request-Id`` and a summary line when it ends."""
        request_id = context.aws_request_id
        request: HttpRequest | None = None
        errors: ErrorFormat = chat_error
        exchange: Exchange | None = None
        summary: dict[str, Any] = {"outcome": "served"}
        try:
            request = HttpRequest.from_event(event, request_id)
            if request.via_rest_api and is_preflight(request):
                response = preflight(request, self.settings)
            else:
                group = self.router.group_for(request.path)
                errors = group.errors
                route, endpoint, params = group.resolve(request)
                exchange = Exchange(request, context, params)
                refusal = await self.guard.admit(exchange) if route.guarded else None
                response = refusal or await endpoint(exchange)
                if refusal is None:
                    self.streams.record(exchange, response)
        except RelayError as error:
            summary = {"outcome": "rejected", "error_code": error.code}
            response = errors(request, error)
        except Exception as exc:
            # A bug: answer like any other failure rather than leaving the caller a bare 502.
            # Only the type is logged; a message could quote request content.
            summary = {"outcome": "failed", "error_code": type(exc).__name__}
            response = errors(request, RelayError(ErrorCode.INTERNAL_ERROR, "the relay failed"))
        response.headers[REQUEST_ID_HEADER] = request_id
        if request is not None and request.via_rest_api:
            add_cors_headers(response, request, self.settings)

        def write_summary() -> None:
            self._summarise(request, exchange, response.status_code, request_id, summary)

        response.body = EpilogueBody(response.body, write_summary)
        return response

    def _summarise(
        self,
        request: HttpRequest | None,
        exchange: Exchange | None,
        status: int,
        request_id: str,
        summary: dict[str, Any],
    ) -> None:
        claims = exchange.claims if exchange else None
        self.telemetry.request_done(
            request,
            status=status,
            stream=exchange.outcome if exchange else None,
            subject=claims.sub if claims else None,
            question=exchange.question if exchange else None,
            request_id=request_id,
            **summary,
        )


class EpilogueBody:
    """``body``, then ``epilogue()`` exactly once when it ends or is closed.

    A class rather than an async generator: each frame costs one extra await, no generator
    frame switch, on the hot path.
    """

    __slots__ = ("_body", "_epilogue", "_next")

    def __init__(self, body: AsyncIterator[bytes], epilogue: Callable[[], None]) -> None:
        self._body = body
        self._next = body.__anext__
        self._epilogue: Callable[[], None] | None = epilogue

    def __aiter__(self) -> EpilogueBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._next()
        except BaseException:
            self._end()
            raise

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._end()

    def _end(self) -> None:
        epilogue, self._epilogue = self._epilogue, None
        if epilogue is not None:
            epilogue()
