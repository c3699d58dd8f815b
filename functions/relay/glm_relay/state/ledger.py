"""Per-user state around a chat: conversation history, daily quotas, spend budgets (DynamoDB).

Both are off unless ``CONVERSATIONS_TABLE`` is set; quotas also need a caller identity (an access
token's ``sub``). The stores and their DynamoDB client are created on first use only.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from glm_relay.chat.media import describe
from glm_relay.chat.prices import PriceTable, answer_usage, spend_limits
from glm_relay.errors import ErrorCode, RelayError
from glm_relay.state.reserve import (
    budget_refusal,
    estimate_tokens,
    over_whole_quota,
    quota_refusal,
    tokens_to_reserve,
)

if TYPE_CHECKING:
    from collections.abc import Callable

    from glm_relay.access import AccessClaims
    from glm_relay.chat.prices import SpendLimits
    from glm_relay.chat.relay import Outcome
    from glm_relay.chat.request import ChatRequest
    from glm_relay.config import Settings
    from glm_relay.state.conversations import ConversationStore
    from glm_relay.state.dynamo import Table
    from glm_relay.state.dynamo_client import DynamoClient
    from glm_relay.state.quotas import QuotaDecision, QuotaLimits, QuotaStore
    from glm_relay.state.responses import ResponseStore
    from glm_relay.state.spend import SpendDecision, SpendStore


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let in by the quota, with the tokens (and money) reserved for it."""

    decision: QuotaDecision
    reserved_tokens: int
    spend: SpendDecision | None = None
    prompt_tokens: int = 0  # the estimate, for an answer that ends without the upstream's usage
    reservation: str | None = None  # the quota reservation's id (reconciled once)


class UserState:
    """Conversations and quotas for one container."""

    def __init__(
        self, settings: Settings, *, client_factory: Callable[[], DynamoClient] | None = None
    ) -> None:
        """``client_factory`` replaces the container's DynamoDB client (the benchmarks' baseline
        passes a boto3 one)."""
        self._settings = settings
        self._factory = client_factory or self._client
        self._conversations: ConversationStore | None = None
        self._quotas: QuotaStore | None = None
        self._spend: SpendStore | None = None
        self._prices: PriceTable | None = None
        self._responses: ResponseStore | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._settings.conversations_table)

    @property
    def conversations(self) -> ConversationStore:
        if self._conversations is None:
            from glm_relay.state.conversations import ConversationStore

            self._conversations = ConversationStore(
                self._settings.conversations_table, client_factory=self._factory
            )
        return self._conversations

    @property
    def quotas(self) -> QuotaStore:
        if self._quotas is None:
            from glm_relay.state.quotas import QuotaStore

            self._quotas = QuotaStore(
                self._settings.conversations_table, client_factory=self._factory
            )
        return self._quotas

    @property
    def spend(self) -> SpendStore:
        if self._spend is None:
            from glm_relay.state.spend import SpendStore

            self._spend = SpendStore(
                self._settings.conversations_table, client_factory=self._factory
            )
        return self._spend

    @property
    def prices(self) -> PriceTable:
        if self._prices is None:
            self._prices = PriceTable(self._settings.currency, self._settings.model_prices)
        return self._prices

    @property
    def responses(self) -> ResponseStore:
        """Stored responses of the Responses API (``state/responses.py``)."""
        if self._responses is None:
            from glm_relay.state.responses import DynamoResponseStore

            self._responses = DynamoResponseStore(
                self._settings.conversations_table, client_factory=self._factory
            )
        return self._responses

    def table(self) -> Table:
        """The table on this container's DynamoDB client (for other writers, e.g. the journal)."""
        from glm_relay.state.dynamo import Table

        return Table(self._settings.conversations_table, self._factory)

    def _client(self) -> DynamoClient:
        """The container's DynamoDB client, on the SSL context the Zhipu pool uses too."""
        from glm_relay.state.dynamo import default_client
        from glm_relay.tls import client_context

        return default_client(client_context(self._settings.tls_ca_bundle))

    async def with_history(self, chat: ChatRequest, owner: str) -> ChatRequest:
        """The request with its conversation's earlier turns before the new question."""
        self._require_enabled()
        assert chat.conversation_id is not None
        history = await self._call(
            self.conversations.load_for_prompt(
                chat.conversation_id, owner, budget_chars=self._settings.conversation_budget_chars
            )
        )
        system = [m for m in chat.messages if m["role"] == "system"]
        rest = [m for m in chat.messages if m["role"] != "system"]
        return replace(chat, messages=[*system, *history, *rest])

    async def create(self, owner: str) -> str:
        """A new conversation's id (written only once the request was admitted)."""
        self._require_enabled()
        return str(await self._call(self.conversations.create(owner)))

    def _require_enabled(self) -> None:
        if not self.enabled:
            raise RelayError(ErrorCode.CONVERSATIONS_DISABLED, "conversations are not enabled here")

    async def history(self, conversation_id: str, owner: str) -> dict[str, Any]:
        """A conversation as JSON, for its owner only."""
        self._require_enabled()
        return await self._call(self.conversations.history(conversation_id, owner))

    async def save_turn(
        self, conversation_id: str, owner: str, chat: ChatRequest, outcome: Outcome
    ) -> None:
        """Store the question and the answer, marked complete, error or stopped. Images, video
        and files are not stored: the question keeps a placeholder for each
        (``[image: image/png, 12345 bytes]``)."""
        await self._call(
            self.conversations.append_turn(
                conversation_id,
                owner,
                question=describe(chat.messages[-1]["content"]),
                answer="".join(outcome.answer),
                status=outcome.status if outcome.status in ("complete", "error") else "stopped",
                usage=outcome.usage,
                model=outcome.model,
                finish_reason=outcome.finish_reason,
                error_code=outcome.error_code,
            )
        )

    def check_affordable(self, claims: AccessClaims | None, chat: ChatRequest) -> int:
        """Refuse with ``quota_exceeded``, before anything is sent anywhere, a request whose
        reservation alone is over the caller's whole daily token quota: it could never be
        admitted, and overlapped with the quota its prompt would have reached the upstream.
        Returns the prompt's token estimate for :meth:`admit` (0 when nothing is counted), so
        an agent's long history and tools are measured once per request."""
        if claims is None or not self.enabled:
            return 0
        prompt = estimate_tokens(chat)
        refusal = over_whole_quota(chat, tokens_to_reserve(chat, prompt), self._limits(claims))
        if refusal is not None:
            raise refusal
        return prompt

    async def admit(
        self, claims: AccessClaims | None, chat: ChatRequest, prompt: int | None = None
    ) -> Admission | None:
        """Reserve the request's cost (``prompt``: what :meth:`check_affordable` estimated,
        else estimated here) under the caller's budgets (``budget_exceeded``), then count it
        against the caller's day (``quota_exceeded``)."""
        if claims is None or not self.enabled:
            return None
        limits = self._limits(claims)
        if prompt is None:
            prompt = estimate_tokens(chat)
        spend = await self._reserve_spend(claims, chat, prompt)
        reserve = tokens_to_reserve(chat, prompt)
        reservation = os.urandom(16).hex()
        try:
            decision = await self._call(
                self.quotas.admit(
                    claims.sub, limits, reserve_tokens=reserve, reservation=reservation
                )
            )
        except BaseException:
            # The write may have landed though its answer was lost: take it back if so.
            with contextlib.suppress(Exception):
                await self.quotas.release(
                    claims.sub, reservation=reservation, reserved_tokens=reserve
                )
            await self._give_back(claims.sub, spend)
            raise
        if not decision.allowed:
            await self._give_back(claims.sub, spend)
            raise quota_refusal(decision, limits, reserve)
        return Admission(decision, reserve, spend, prompt, reservation)

    def _limits(self, claims: AccessClaims) -> QuotaLimits:
        """The caller's daily limits: its token's own, else the function's."""
        from glm_relay.state.quotas import QuotaLimits

        settings = self._settings
        return QuotaLimits(
            requests_per_day=_first(
                claims.limits.requests_per_day, settings.quota_requests_per_day
            ),
            tokens_per_day=_first(claims.limits.tokens_per_day, settings.quota_tokens_per_day),
        )

    async def _reserve_spend(
        self, claims: AccessClaims, chat: ChatRequest, prompt_tokens: int
    ) -> SpendDecision | None:
        """The budget's reservation (its worst case: the prompt and every token of
        ``max_tokens``), or ``budget_exceeded`` naming the limit and when it resets."""
        limits: SpendLimits = spend_limits(self._settings, claims)
        if not limits.any:
            return None
        nanos = self.prices.estimate_nanos(chat.model, prompt_tokens, chat.max_tokens)
        reservation = os.urandom(16).hex()
        try:
            decision = await self._call(self.spend.reserve(claims.sub, limits, nanos, reservation))
        except RelayError:
            # The write may have landed though its answer was lost: give it back if so.
            with contextlib.suppress(Exception):
                await self.spend.release(claims.sub, reservation, nanos)
            raise
        if not decision.allowed:
            raise budget_refusal(decision, self.prices.currency, chat.max_tokens)
        return decision

    async def _give_back(self, sub: str, spend: SpendDecision | None) -> None:
        if spend is not None:
            with contextlib.suppress(Exception):
                await self.spend.settle(sub, spend, 0)

    async def settle(
        self, claims: AccessClaims | None, admission: Admission | None, outcome: Outcome | None
    ) -> None:
        """Replace the reservations by what the answer really cost (nothing if it never began),
        and add it to the caller's usage per model.

        A failure is raised for the caller to report (the reservation then lapses with the day);
        it must never hide why the request ended.
        """
        if claims is None or admission is None:
            return
        counts = answer_usage(outcome, admission.prompt_tokens)
        model = outcome.model if outcome is not None else ""
        cost = self.prices.cost_nanos(model, counts) if outcome is not None else 0
        writes = [
            self.quotas.reconcile(
                claims.sub,
                reserved_tokens=admission.reserved_tokens,
                actual_tokens=int(counts.get("total_tokens") or 0),
                day=admission.decision.day,
                reservation=admission.reservation,
            )
        ]
        if admission.spend is not None:
            writes.append(self.spend.settle(claims.sub, admission.spend, cost))
        if outcome is not None:
            from glm_relay.state.spend import usage_counts

            counted = usage_counts(counts, cost)
            writes.append(self.spend.record(claims.sub, model, counted, admission.decision.day))
        failures: list[Exception] = []
        for write in writes:  # each is tried, whatever the one before did
            try:
                await write
            except Exception as failure:
                failures.append(failure)
        if failures:
            raise failures[0]

    async def usage(self, claims: AccessClaims | None) -> dict[str, Any]:
        """The caller's own usage today and this month, and what is left of their budgets."""
        if claims is None:
            raise RelayError(ErrorCode.UNAUTHORIZED, "usage is kept per access token: send one")
        self._require_enabled()
        from glm_relay.state.usage import caller_usage

        limits = spend_limits(self._settings, claims)
        return dict(await self._call(caller_usage(self.spend, self.prices, claims.sub, limits)))

    async def _call(self, awaitable: Any) -> Any:
        """Map the stores' refusals and outages onto the relay's codes."""
        from glm_relay.state.conversations import ConversationForbidden, ConversationNotFound

        try:
            return await awaitable
        except (ConversationNotFound, ConversationForbidden):
            # The same answer for both, so nobody can probe which ids exist.
            raise RelayError(ErrorCode.CONVERSATION_NOT_FOUND, "no such conversation") from None
        except RelayError:
            raise
        except ValueError as exc:
            raise RelayError(ErrorCode.INVALID_PARAMETER, str(exc)[:200]) from None
        except Exception:
            raise RelayError(
                ErrorCode.STATE_UNAVAILABLE, "the state store is unavailable"
            ) from None


def _first(override: int | None, default: int) -> int:
    return default if override is None else override
