"""Per-user state around a chat: conversation history and daily quotas (DynamoDB).

Both are off unless ``CONVERSATIONS_TABLE`` is set; quotas also need a caller identity (an access
token's ``sub``). The stores and their DynamoDB client are created on first use only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from glm_relay.chat.media import describe
from glm_relay.errors import ErrorCode, RelayError

if TYPE_CHECKING:
    from collections.abc import Callable

    from glm_relay.access import AccessClaims
    from glm_relay.chat.relay import Outcome
    from glm_relay.chat.request import ChatRequest
    from glm_relay.config import Settings
    from glm_relay.state.conversations import ConversationStore
    from glm_relay.state.dynamo import Table
    from glm_relay.state.dynamo_client import DynamoClient
    from glm_relay.state.quotas import QuotaDecision, QuotaLimits, QuotaStore
    from glm_relay.state.responses import ResponseStore


@dataclass(frozen=True, slots=True)
class Admission:
    """A request let in by the quota, with the tokens reserved for it."""

    decision: QuotaDecision
    reserved_tokens: int


def estimate_tokens(chat: ChatRequest) -> int:
    """A cautious token estimate for a prompt's text and its tools' JSON (about one token per
    two characters); media are not text (base64 would count a thousand times over) and settle
    from the upstream's usage."""
    tools = len(json.dumps(chat.tools, ensure_ascii=False)) if chat.tools else 0
    return (chat.prompt_chars + tools) // 2 + 1


def reservation(chat: ChatRequest) -> int:
    """The tokens a request reserves: its ``max_tokens`` and its prompt's estimate, but never
    more than its model's context window, the most one request can be billed (the upstream
    refuses a longer one). An agent's 800,000-character history reserves 200K tokens on a
    200K model, not the 400K its characters alone would suggest."""
    reserve = chat.max_tokens + estimate_tokens(chat)
    return min(reserve, chat.spec.context_window) if chat.spec is not None else reserve


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

    def check_affordable(self, claims: AccessClaims | None, chat: ChatRequest) -> None:
        """Refuse with ``quota_exceeded``, before anything is sent anywhere, a request whose
        reservation alone is over the caller's whole daily token quota: it could never be
        admitted, and overlapped with the quota its prompt would have reached the upstream."""
        if claims is None or not self.enabled:
            return
        limits, reserve = self._limits(claims), reservation(chat)
        if reserve > limits.tokens_per_day:
            from glm_relay.state.dynamo import next_utc_midnight

            raise _over_quota(
                f"this request needs up to {reserve} tokens (its prompt's estimate and "
                f"max_tokens {chat.max_tokens}), more than the daily quota of "
                f"{limits.tokens_per_day} tokens: shorten the conversation or lower max_tokens",
                next_utc_midnight(time.time()),
                {"requested_tokens": reserve, "tokens_per_day": limits.tokens_per_day},
            )

    async def admit(self, claims: AccessClaims | None, chat: ChatRequest) -> Admission | None:
        """Count the request against the caller's day, or refuse it with ``quota_exceeded``."""
        if claims is None or not self.enabled:
            return None
        limits, reserve = self._limits(claims), reservation(chat)
        decision = await self._call(self.quotas.admit(claims.sub, limits, reserve_tokens=reserve))
        if decision.allowed:
            return Admission(decision, reserve)
        if decision.reason == "requests":
            message = "the daily requests quota is used up"
            extra: dict[str, Any] = {}
        else:
            remaining = max(0, limits.tokens_per_day - decision.tokens_used)
            message = (
                f"the daily tokens quota is used up: this request needs up to {reserve} tokens, "
                f"{remaining} of {limits.tokens_per_day} remain"
            )
            extra = {"requested_tokens": reserve, "remaining_tokens": remaining}
        raise _over_quota(message, decision.resets_at, extra)

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

    async def settle(
        self, claims: AccessClaims | None, admission: Admission | None, outcome: Outcome | None
    ) -> None:
        """Replace the reservation by what the answer really cost (nothing if it never began).

        A failure is raised for the caller to report (the reservation then lapses with the day);
        it must never hide why the request ended.
        """
        if claims is None or admission is None:
            return
        actual = 0
        if outcome is not None:
            usage = outcome.usage or {}
            actual = int(usage.get("total_tokens") or 0) or sum(len(p) for p in outcome.answer)
        await self.quotas.reconcile(
            claims.sub,
            reserved_tokens=admission.reserved_tokens,
            actual_tokens=actual,
            day=admission.decision.day,
        )

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


def _over_quota(message: str, resets_at: int, extra: dict[str, Any]) -> RelayError:
    return RelayError(
        ErrorCode.QUOTA_EXCEEDED,
        f"{message}; it resets at {_iso(resets_at)}",
        retry_after=max(1.0, resets_at - time.time()),
        extra={"resets_at": resets_at, **extra},
    )


def _first(override: int | None, default: int) -> int:
    return default if override is None else override


def _iso(epoch: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
