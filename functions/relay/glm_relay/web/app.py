"""The HTTP front door: one route table, one place for request ids, errors and summary lines.

Example:
    app = WebApp(Settings.from_env())
    response = await app.handle(event, context)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.runtime import fixed_response
from glm_relay.web.anthropic.errors import anthropic_error, from_anthropic_sdk
from glm_relay.web.chat_api import ChatEndpoints, chat_error
from glm_relay.web.cors import add_cors_headers, is_preflight, preflight
from glm_relay.web.documents import ConversationEndpoint, PageEndpoint, UsageEndpoint
from glm_relay.web.guard import Guard
from glm_relay.web.headers import JSON_HEADERS, REQUEST_ID_HEADER
from glm_relay.web.openai_errors import openai_error
from glm_relay.web.request import HttpRequest
from glm_relay.web.resume import ResumableStreams
from glm_relay.web.routing import Endpoint, ErrorFormat, Exchange, Route, RouteGroup, Router
from glm_relay.web.services import Services

if TYPE_CHECKING:
    from glm_relay.config import Settings
    from glm_relay.runtime import InvocationContext, StreamingResponse
    from glm_relay.upstream import CredentialStore

T = TypeVar("T")


def build_router(settings: Settings, services: Services) -> Router:
    """Every route the relay serves, grouped by error format."""
    page = PageEndpoint()
    chat = ChatEndpoints(settings, services.chats)
    conversation = ConversationEndpoint(services.state)
    openai = LazyEndpoints(lambda: _openai_endpoints(settings, services))
    responses = LazyEndpoints(lambda: _responses_endpoints(settings, services))
    messages = LazyEndpoints(lambda: _messages_endpoints(settings, services))
    relay_routes = (
        Route("/", {"GET": page.get, "HEAD": page.head}, guarded=False),
        Route("/chat", {"GET": chat.get, "POST": chat.post}),
        Route("/conversations/{id}", {"GET": conversation.get}),
        Route("/usage", {"GET": UsageEndpoint(services.state).get}),
    )
    openai_routes = (
        Route("/v1/chat/completions", {"POST": openai.endpoint("chat_completions")}),
        Route("/v1/models", {"GET": openai.endpoint("models")}),
        Route("/v1/models/{id}", {"GET": openai.endpoint("model")}),
        Route("/v1/responses", {"POST": responses.endpoint("create")}),
        Route(
            "/v1/responses/{id}",
            {"GET": responses.endpoint("get"), "DELETE": responses.endpoint("delete")},
        ),
    )
    # Anthropic's SDKs and Claude Code read errors in Anthropic's shape: a group of its own.
    messages_routes = (
        Route("/v1/messages", {"POST": messages.endpoint("messages")}),
        Route("/v1/messages/count_tokens", {"POST": messages.endpoint("count_tokens")}),
    )
    return Router(
        (
            RouteGroup("", chat_error, relay_routes),
            RouteGroup("/v1/", v1_error, openai_routes),
            RouteGroup("/v1/messages", anthropic_error, messages_routes),
        )
    )


def v1_error(request: HttpRequest | None, error: RelayError) -> StreamingResponse:
    """``/v1``'s errors: OpenAI's shape, or Anthropic's for a caller that sends
    ``anthropic-version`` (an Anthropic SDK listing models)."""
    if request is not None and from_anthropic_sdk(request):
        return anthropic_error(request, error)
    return openai_error(request, error)


def _openai_endpoints(settings: Settings, services: Services) -> Any:
    from glm_relay.web.openai_api import OpenAIEndpoints

    return OpenAIEndpoints(settings, services.chats)


def _responses_endpoints(settings: Settings, services: Services) -> Any:
    from glm_relay.web.responses import ResponsesEndpoints

    return ResponsesEndpoints(
        settings, services.chats, services.state, services.credentials, services.telemetry
    )


def _messages_endpoints(settings: Settings, services: Services) -> Any:
    from glm_relay.web.anthropic.endpoints import MessagesEndpoints

    return MessagesEndpoints(settings, services.chats, services.credentials)


class LazyEndpoints(Generic[T]):
    """A front end's endpoints, built on its first request: a container that only serves
    ``/chat`` never imports ``/v1``, the Responses API or ``/v1/messages`` (cold start)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._endpoints: T | None = None

    def endpoint(self, name: str) -> Endpoint:
        """The endpoint method ``name`` of the front end, loading it when first called."""

        async def call(exchange: Exchange) -> StreamingResponse:
            if self._endpoints is None:
                self._endpoints = self._build()
            method: Endpoint = getattr(self._endpoints, name)
            return await method(exchange)

        return call


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
            response = _error_response(errors, request, error, summary)
        except Exception as exc:
            # A bug: answer like any other failure rather than leaving the caller a bare 502.
            # Only the type is logged; a message could quote request content.
            summary = {"outcome": "failed", "error_code": type(exc).__name__}
            response = _error_response(errors, request, _INTERNAL, summary)
        response.headers[REQUEST_ID_HEADER] = request_id
        if request is not None and request.via_rest_api:
            add_cors_headers(response, request, self.settings)

        def write_summary(failure: BaseException | None) -> None:
            if isinstance(failure, Exception):
                # The body broke after its status was sent: the line says so.
                summary.update(outcome="failed", error_code=type(failure).__name__)
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


_INTERNAL = RelayError(ErrorCode.INTERNAL_ERROR, "the relay failed")
_LAST_RESORT_BODY = b'{"error": {"code": "internal_error", "message": "the relay failed"}}'


def _error_response(
    errors: ErrorFormat, request: HttpRequest | None, error: RelayError, summary: dict[str, Any]
) -> StreamingResponse:
    """``error`` in the route's format; should even that fail (a bug), the relay's own 500, so
    the caller still gets an answer and the request still gets its line."""
    try:
        return errors(request, error)
    except Exception as exc:
        summary.update(outcome="failed", error_code=type(exc).__name__)
        return fixed_response(500, dict(JSON_HEADERS), _LAST_RESORT_BODY)


class EpilogueBody:
    """``body``, then ``epilogue(failure)`` exactly once when it ends, fails or is closed.

    A class rather than an async generator: each frame costs one extra await, no generator
    frame switch, on the hot path.
    """

    __slots__ = ("_body", "_epilogue", "_next")

    def __init__(
        self, body: AsyncIterator[bytes], epilogue: Callable[[BaseException | None], None]
    ) -> None:
        self._body = body
        self._next = body.__anext__
        self._epilogue: Callable[[BaseException | None], None] | None = epilogue

    def __aiter__(self) -> EpilogueBody:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self._next()
        except StopAsyncIteration:
            self._end(None)
            raise
        except BaseException as exc:
            self._end(exc)
            raise

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._end(None)

    def _end(self, failure: BaseException | None) -> None:
        epilogue, self._epilogue = self._epilogue, None
        if epilogue is not None:
            epilogue(failure)
