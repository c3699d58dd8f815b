"""How many tokens a request reserves under the daily quota, and the refusals that say so.

A request reserves its ``max_tokens`` and a cautious estimate of its prompt, never more than its
model's context window (the most one request can be billed: the upstream refuses a longer one),
and settles on the upstream's usage. An agent resends its whole session each turn, so a refusal
names what the request needs and what is left, not only that the quota is used up.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any

from glm_relay.chat.prices import CHARS_PER_TOKEN
from glm_relay.errors import ErrorCode, RelayError

if TYPE_CHECKING:
    from glm_relay.chat.request import ChatRequest
    from glm_relay.state.quotas import QuotaDecision, QuotaLimits
    from glm_relay.state.spend import SpendDecision


def prompt_tokens_to_reserve(chat: ChatRequest) -> int:
    """A cautious token estimate for a prompt's text and its tools' JSON, what a quota or budget
    reserves (one token per ``CHARS_PER_TOKEN`` characters; ``chat.tokens`` is the closer count
    ``count_tokens`` answers with); media are not text (base64 would count a thousand times over)
    and settle from the upstream's usage."""
    tools = len(json.dumps(chat.tools, ensure_ascii=False)) if chat.tools else 0
    return (chat.prompt_chars + tools) // CHARS_PER_TOKEN + 1


def tokens_to_reserve(chat: ChatRequest, prompt_tokens: int) -> int:
    """``max_tokens`` and the prompt's estimate, at most the model's context window: an
    agent's 800,000-character history reserves 200K tokens on a 200K model, not 400K."""
    reserve = chat.max_tokens + prompt_tokens
    return min(reserve, chat.spec.context_window) if chat.spec is not None else reserve


def over_whole_quota(chat: ChatRequest, reserve: int, limits: QuotaLimits) -> RelayError | None:
    """The refusal of a request whose reservation alone is over the whole daily token quota
    (it could never be admitted), or ``None``."""
    if reserve <= limits.tokens_per_day:
        return None
    from glm_relay.state.dynamo import next_utc_midnight

    return _over_quota(
        f"this request needs up to {reserve} tokens (its prompt's estimate and max_tokens "
        f"{chat.max_tokens}), more than the daily quota of {limits.tokens_per_day} tokens: "
        "shorten the conversation or lower max_tokens",
        next_utc_midnight(time.time()),
        {"requested_tokens": reserve, "tokens_per_day": limits.tokens_per_day},
    )


def quota_refusal(decision: QuotaDecision, limits: QuotaLimits, reserve: int) -> RelayError:
    """What a caller is told when the day's requests or tokens cannot take this request."""
    if decision.reason == "requests":
        return _over_quota("the daily requests quota is used up", decision.resets_at, {})
    remaining = max(0, limits.tokens_per_day - decision.tokens_used)
    return _over_quota(
        f"the daily tokens quota is used up: this request needs up to {reserve} tokens, "
        f"{remaining} of {limits.tokens_per_day} remain",
        decision.resets_at,
        {"requested_tokens": reserve, "remaining_tokens": remaining},
    )


def budget_refusal(decision: SpendDecision, currency: str, max_tokens: int) -> RelayError:
    """``budget_exceeded``: which budget, what the request may cost against what is left (or
    that it may cost more than the whole budget, so waiting is no cure), and when it resets."""
    from glm_relay.chat.prices import amount_text

    period = "daily" if decision.limit == "spend_per_day" else "monthly"
    budget = f"the {period} spend budget of {amount_text(decision.limit_nanos)} {currency}"
    most = f"{amount_text(decision.nanos)} {currency}"
    if decision.nanos > decision.limit_nanos:
        message = (
            f"this request may cost up to {most} (its prompt, and max_tokens {max_tokens} at "
            f"the output price), more than {budget}: lower max_tokens or shorten the conversation"
        )
    else:
        left = amount_text(max(0, decision.limit_nanos - decision.spent_nanos))
        message = (
            f"{budget} is used up: this request may cost up to {most}, {left} {currency} remain"
        )
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(decision.resets_at))
    return RelayError(
        ErrorCode.BUDGET_EXCEEDED,
        f"{message}; it resets at {when}",
        retry_after=max(1.0, decision.resets_at - time.time()),
        extra={"limit": decision.limit, "resets_at": decision.resets_at},
    )


def _over_quota(message: str, resets_at: int, extra: dict[str, Any]) -> RelayError:
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(resets_at))
    return RelayError(
        ErrorCode.QUOTA_EXCEEDED,
        f"{message}; it resets at {when}",
        retry_after=max(1.0, resets_at - time.time()),
        extra={"resets_at": resets_at, **extra},
    )
