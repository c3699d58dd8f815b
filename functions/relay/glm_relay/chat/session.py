"""Starting an answer: history, quota, the upstream stream; then a body in any wire format.

The service depends on two roles, not on their implementations: an ``Upstream`` that opens an
answer stream, and a ``Ledger`` that keeps conversations and quotas. The front ends call
``ChatService.start`` and choose the wire format; everything else about an answer is here once.

The quota and the upstream request overlap instead of waiting for each other: the upstream
request is sent while the quota reservation (and a new conversation's creation) runs, and nothing
reaches the caller before the quota said yes. A refused request closes its upstream request
before any byte of it is relayed, which may cost a few upstream tokens for a request that is
answered 429; in exchange an admitted request's first token no longer waits for a DynamoDB round
trip. A follow-up's history is read first, though: it is part of the prompt (and of the tokens the
quota reserves), so it must be known before the request is sent. ``QUOTA_OVERLAP=false``
(``overlap=False``) keeps the strict order instead.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from glm_relay.chat.bookkeeping import Jobs
from glm_relay.chat.call_rules import with_call_rules
from glm_relay.chat.clock import LOOP_CLOCK, Clock
from glm_relay.chat.prices import PriceTable, money, spend_limits
from glm_relay.chat.relay import Clocks, OnComplete, OnLost, Outcome, RelayBody, WireFormat

if TYPE_CHECKING:
    from glm_relay.access import AccessClaims
    from glm_relay.chat.pieces import AnswerStream, Finish
    from glm_relay.chat.request import ChatRequest
    from glm_relay.config import Settings

ANONYMOUS = "anonymous"
NEW_CONVERSATION = "new"
# A prompt longer than this waits for the quota before it is sent: the quota's round trip is
# small beside the upstream's reading of such a prompt, and a refused one, once sent, may be
# billed whole (an agent's session of 200K tokens, say).
OVERLAP_MAX_PROMPT_CHARS = 32_000


class Upstream(Protocol):
    """Opens an answer stream for a chat, retrying inside ``deadline`` as it sees fit.

    ``on_sent`` is called (possibly more than once) as soon as the request is out of the caller's
    hands: written to the wire, or waiting on I/O (a connection, a secret) before it can be.
    """

    async def open_stream(
        self,
        chat: ChatRequest,
        *,
        request_id: str,
        deadline: float,
        on_sent: Callable[[], None] | None = None,
    ) -> AnswerStream: ...


class Ledger(Protocol):
    """Conversations and quotas (``admission`` is whatever ``admit`` returned)."""

    async def with_history(self, chat: ChatRequest, owner: str) -> ChatRequest: ...

    def check_affordable(self, claims: AccessClaims | None, chat: ChatRequest) -> int:
        """Raise if the request could never be admitted (nothing has been sent yet), else
        return the prompt's token estimate that ``admit`` reserves."""

    async def admit(self, claims: AccessClaims | None, chat: ChatRequest, prompt: int) -> Any: ...

    async def create(self, owner: str) -> str: ...

    async def settle(
        self, claims: AccessClaims | None, admission: Any, outcome: Outcome | None
    ) -> None: ...

    async def save_turn(
        self, conversation_id: str, owner: str, chat: ChatRequest, outcome: Outcome
    ) -> None: ...


@dataclass(slots=True)
class ChatSession:
    """An answer whose upstream stream has begun; ``meta`` is what callers are told first."""

    upstream: AnswerStream
    outcome: Outcome
    clocks: Clocks
    on_complete: OnComplete
    meta: dict[str, Any]
    clock: Clock = LOOP_CLOCK
    on_lost: OnLost | None = None
    prices: PriceTable | None = None

    def body(
        self, wire: WireFormat, *, then: Callable[[Outcome], Awaitable[None]] | None = None
    ) -> RelayBody:
        """The response body, written in ``wire``'s format; ``then`` (a front end's own state:
        the Responses API's stored response) runs beside the answer's own bookkeeping (quota,
        conversation), under the same bound, named ``stored_response``."""
        on_complete = self.on_complete
        if then is not None:
            first = on_complete

            def on_complete(outcome: Outcome) -> Jobs:
                return {**first(outcome), "stored_response": then(outcome)}

        return RelayBody(
            self.upstream,
            self.outcome,
            self.clocks,
            wire if self.prices is None else PricedWire(wire, self.prices),
            on_complete=on_complete,
            on_lost=self.on_lost,
            clock=self.clock,
        )


class PricedWire:
    """A wire format whose terminal frame knows what the answer cost (``outcome.cost``)."""

    def __init__(self, wire: WireFormat, prices: PriceTable) -> None:
        self._wire, self._prices = wire, prices
        self.opening, self.piece, self.keepalive = wire.opening, wire.piece, wire.keepalive
        self.error = wire.error

    def done(self, finish: Finish, outcome: Outcome) -> bytes:
        if finish.usage:
            outcome.cost = money(self._prices.cost_nanos(outcome.model, finish.usage))
            outcome.currency = self._prices.currency
        return self._wire.done(finish, outcome)


class ChatService:
    """Everything before an answer's first byte, for either front end.

    Example:
        service = ChatService(settings, upstream=zhipu, ledger=user_state)
        session = await service.start(chat, request_id="r-1", remaining_ms=30_000, claims=None)
        body = session.body(wire_format)
    """

    def __init__(
        self,
        settings: Settings,
        *,
        upstream: Upstream,
        ledger: Ledger,
        clock: Clock = LOOP_CLOCK,
        overlap: bool = True,
        on_lost: OnLost | None = None,
    ) -> None:
        """``overlap=False`` waits for the quota before sending the upstream request (no tokens
        spent on refused requests, one more round trip before every first token). ``on_lost``
        hears of an answer's bookkeeping that was never settled."""
        self._settings = settings
        self._upstream = upstream
        self._ledger = ledger
        self._clock = clock
        self._overlap = overlap
        self._on_lost = on_lost
        self._prices = PriceTable(settings.currency, settings.model_prices)

    async def start(
        self,
        chat: ChatRequest,
        *,
        request_id: str,
        remaining_ms: int,
        claims: AccessClaims | None,
    ) -> ChatSession:
        """History, quota and the upstream stream; any ``RelayError`` raised here is still an
        HTTP status. After it returns, the caller streams ``session.body(wire_format)``."""
        settings, ledger = self._settings, self._ledger
        started = self._clock.now()
        deadline = started + max(0, remaining_ms - settings.deadline_margin_ms) / 1000
        owner = claims.sub if claims else ANONYMOUS
        if claims is not None and claims.limits.max_tokens is not None:
            chat = chat.capped(claims.limits.max_tokens)
        if chat.conversation_id not in (None, NEW_CONVERSATION):
            chat = await ledger.with_history(chat, owner)
        prompt_tokens = ledger.check_affordable(claims, chat)
        # A caller with a spend budget, or a long prompt, is admitted before anything reaches
        # the upstream: a refused request then costs nothing (and its first token one round
        # trip more).
        overlap = (
            self._overlap
            and not spend_limits(settings, claims).any
            and chat.prompt_chars <= OVERLAP_MAX_PROMPT_CHARS
        )
        opening, sent = self._open(chat, request_id, deadline) if overlap else (None, None)
        try:
            if sent is not None:
                # The quota's own work (building and signing its request) waits until the
                # upstream request is on its way, so it delays the upstream by nothing.
                await sent
            admission = await ledger.admit(claims, chat, prompt_tokens)
        except BaseException:
            if opening is not None:
                await _abandon(opening)
            raise
        try:
            if chat.conversation_id == NEW_CONVERSATION:
                chat = replace(chat, conversation_id=await ledger.create(owner))
            if opening is None:
                upstream = await self._upstream.open_stream(
                    chat, request_id=request_id, deadline=deadline
                )
            else:
                upstream = await opening
        except BaseException:
            if opening is not None:
                await _abandon(opening)
            # Nothing was spent: give the reservation back (best effort, never masking why).
            with contextlib.suppress(Exception):
                await ledger.settle(claims, admission, None)
            raise
        upstream = with_call_rules(upstream, chat)
        meta: dict[str, Any] = {}
        if chat.conversation_id is not None:
            meta["conversation_id"] = chat.conversation_id
        outcome = Outcome(request_id, chat.model, started, attempts=upstream.attempts)
        conversation_id = chat.conversation_id

        def bookkeeping(outcome: Outcome) -> dict[str, Awaitable[None]]:
            jobs: dict[str, Awaitable[None]] = {"quota": ledger.settle(claims, admission, outcome)}
            if conversation_id is not None:
                jobs["conversation_turn"] = ledger.save_turn(conversation_id, owner, chat, outcome)
            return jobs

        clocks = Clocks(
            settings.keepalive_seconds,
            settings.idle_timeout_seconds,
            deadline,
            settings.bookkeeping_wait_seconds,
        )
        return ChatSession(
            upstream, outcome, clocks, bookkeeping, meta, self._clock, self._on_lost, self._prices
        )

    def _open(
        self, chat: ChatRequest, request_id: str, deadline: float
    ) -> tuple[asyncio.Task[Any], asyncio.Future[None]]:
        """The upstream request, under way in its own task, and a future done once that request
        is out of our hands (sent, or waiting on I/O, or finished either way)."""
        sent: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def release(*_: object) -> None:
            if not sent.done():
                sent.set_result(None)

        opening = asyncio.ensure_future(
            self._upstream.open_stream(
                chat, request_id=request_id, deadline=deadline, on_sent=release
            )
        )
        opening.add_done_callback(release)
        return opening, sent


async def _abandon(opening: asyncio.Task[Any]) -> None:
    """Stop an upstream request nobody will read: cancel it in flight (which closes its
    connection, so the upstream sees the request end), or close the stream it already opened."""
    if not opening.done():
        opening.cancel()
    await asyncio.wait([opening])
    if opening.cancelled() or opening.exception() is not None:
        return
    await opening.result().aclose()
