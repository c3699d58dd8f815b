"""A route table in which each route owns its methods and each group owns its error format.

A path belongs to the group with the longest matching prefix; the group answers its own 404s,
405s (with ``Allow``) and every other error in its format, so ``/v1`` speaks OpenAI's error shape
and the rest speaks the relay's, without sniffing paths anywhere else.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Protocol

from glm_relay.chat.media import describe
from glm_relay.chat.session import ANONYMOUS
from glm_relay.errors import ErrorCode, RelayError

if TYPE_CHECKING:
    from glm_relay.access import AccessClaims
    from glm_relay.chat.relay import Outcome
    from glm_relay.chat.request import ChatRequest
    from glm_relay.chat.session import ChatService, ChatSession
    from glm_relay.runtime import InvocationContext, StreamingResponse
    from glm_relay.web.request import HttpRequest


class Exchange:
    """One request on its way through the app: what endpoints read and what the summary needs.

    ``claims`` is filled by the access check; ``outcome`` and ``question`` by an endpoint that
    relays an answer. (The classes here are plain: they are built at every cold start, and a
    dataclass costs a generated-code compile each.)
    """

    __slots__ = ("claims", "context", "outcome", "params", "question", "request")

    def __init__(
        self, request: HttpRequest, context: InvocationContext, params: Mapping[str, str]
    ) -> None:
        self.request = request
        self.context = context
        self.params = params
        self.claims: AccessClaims | None = None
        self.outcome: Outcome | None = None
        self.question: str | None = None

    @property
    def owner(self) -> str:
        """Whose records this request reads and writes: the access token's ``sub``, or
        ``anonymous`` without tokens."""
        return self.claims.sub if self.claims else ANONYMOUS

    async def start_answer(self, chats: ChatService, chat: ChatRequest) -> ChatSession:
        """Start ``chat`` for this caller within the invocation's time, and note what the summary
        line reports of it."""
        self.question = describe(chat.messages[-1]["content"])
        session = await chats.start(
            chat,
            request_id=self.request.request_id,
            remaining_ms=self.context.get_remaining_time_in_millis(),
            claims=self.claims,
        )
        self.outcome = session.outcome
        return session


Endpoint = Callable[[Exchange], Awaitable["StreamingResponse"]]


class ErrorFormat(Protocol):
    """Writes a failure known before streaming as a response (``request`` is ``None`` when the
    event itself could not be read)."""

    def __call__(self, request: HttpRequest | None, error: RelayError) -> StreamingResponse: ...


class Route:
    """A path (``{name}`` matches one non-empty segment) and the endpoint of each method.

    ``guarded`` routes spend money or read state: they get the origin check, the reconnect rule
    and the access-token check before their endpoint runs.
    """

    __slots__ = ("guarded", "methods", "path")

    def __init__(self, path: str, methods: Mapping[str, Endpoint], *, guarded: bool = True) -> None:
        self.path = path
        self.methods = methods
        self.guarded = guarded

    def match(self, path: str) -> dict[str, str] | None:
        """The path's parameters if it matches, else ``None``."""
        want, got = self.path.split("/"), path.split("/")
        if len(want) != len(got):
            return None
        params: dict[str, str] = {}
        for pattern, segment in zip(want, got, strict=True):
            if pattern.startswith("{") and pattern.endswith("}"):
                if not segment:
                    return None
                params[pattern[1:-1]] = segment
            elif pattern != segment:
                return None
        return params


class RouteGroup:
    """Routes under one prefix that share an error format."""

    __slots__ = ("errors", "prefix", "routes")

    def __init__(self, prefix: str, errors: ErrorFormat, routes: tuple[Route, ...]) -> None:
        self.prefix = prefix
        self.errors = errors
        self.routes = routes

    def resolve(self, request: HttpRequest) -> tuple[Route, Endpoint, dict[str, str]]:
        """The route, endpoint and parameters for ``request``; 404 or 405 otherwise."""
        for route in self.routes:
            params = route.match(request.path)
            if params is None:
                continue
            endpoint = route.methods.get(request.method)
            if endpoint is None:
                allowed = ", ".join(route.methods)
                raise RelayError(
                    ErrorCode.METHOD_NOT_ALLOWED,
                    f"{request.path} accepts {allowed}",
                    headers={"Allow": allowed},
                )
            return route, endpoint, params
        raise RelayError(ErrorCode.NOT_FOUND, "no such path")


class Router:
    """Groups by prefix; the empty prefix is the default."""

    __slots__ = ("groups",)

    def __init__(self, groups: tuple[RouteGroup, ...]) -> None:
        self.groups = groups

    def group_for(self, path: str) -> RouteGroup:
        """The group whose prefix is the longest one ``path`` starts with."""
        best: RouteGroup | None = None
        for group in self.groups:
            if path.startswith(group.prefix) and (
                best is None or len(group.prefix) > len(best.prefix)
            ):
                best = group
        if best is None:
            raise LookupError("no default route group")
        return best
