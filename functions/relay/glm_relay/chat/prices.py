"""What an answer costs: a price per model (input, cached input, output per million tokens).

The table ships with Zhipu's published prices, gathered on ``PRICES_DATE`` from the z.ai
(USD) and bigmodel.cn (CNY) pricing pages; prices change and resellers charge others, so
``MODEL_PRICES`` (JSON ``{"model": {"input", "cached_input", "output"}}``, per million tokens in
``CURRENCY``) overrides or extends it. A model with no published price (and no override) is
priced like the dearest model of the table, so a budget never undercounts; the catalogue's free
models cost nothing.

Costs are whole nano-units of the currency (10^-9), so counters in DynamoDB stay exact integers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from glm_relay.chat.models import CATALOGUE
from glm_relay.errors import ErrorCode, RelayError

if TYPE_CHECKING:
    from glm_relay.access import AccessClaims
    from glm_relay.chat.relay import Outcome
    from glm_relay.config import Settings

PRICES_DATE = "2026-12"
CURRENCIES = ("USD", "CNY")
NANOS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class Price:
    """Per million tokens: fresh input, cached input, output."""

    input: float
    cached_input: float
    output: float

    def nanos(self, prompt_tokens: int, cached_tokens: int, completion_tokens: int) -> int:
        """The cost of a call in nano-units (a million tokens at 1.00 is 10^9)."""
        cached = min(max(cached_tokens, 0), max(prompt_tokens, 0))
        fresh = max(prompt_tokens, 0) - cached
        total = (
            fresh * self.input
            + cached * self.cached_input
            + max(completion_tokens, 0) * self.output
        )
        return round(total * 1000)  # per million tokens -> nanos per token


def _p(input_price: float, output: float, cached: float | None = None) -> Price:
    return Price(input_price, input_price if cached is None else cached, output)


# Published prices; a cached rate is given where one is published (else: the input rate).
PUBLISHED: dict[str, dict[str, Price]] = {
    "USD": {
        "glm-4.6": _p(0.60, 2.20, 0.11),
        "glm-4.7": _p(0.60, 2.20, 0.11),
        "glm-5": _p(1.00, 3.20),
        "glm-5.1": _p(1.40, 4.40),
        "glm-5.2": _p(1.40, 4.40),
        "glm-5.3": _p(1.40, 4.40, 0.26),
        "glm-5v-turbo": _p(1.20, 4.00),
    },
    "CNY": {
        "glm-5": _p(4.0, 18.0),
        "glm-5.1": _p(6.0, 24.0, 1.2),
    },
}
_FREE = Price(0.0, 0.0, 0.0)


class PriceTable:
    """The prices in force: the published ones for ``currency``, then the operator's.

    Example:
        table = PriceTable("USD", {"glm-4.5-air": {"input": 0.2, "output": 1.1}})
        table.cost_nanos("glm-4.7", {"prompt_tokens": 10, "completion_tokens": 5})
    """

    def __init__(self, currency: str = "USD", overrides: dict[str, Any] | None = None) -> None:
        if currency not in CURRENCIES:
            raise RelayError(ErrorCode.CONFIGURATION_ERROR, "CURRENCY must be 'USD' or 'CNY'")
        self.currency = currency
        self._prices = {**PUBLISHED[currency], **_read_overrides(overrides or {})}
        self._dearest = Price(
            max(p.input for p in self._prices.values()),
            max(p.cached_input for p in self._prices.values()),
            max(p.output for p in self._prices.values()),
        )

    def price(self, model: str) -> Price:
        known = self._prices.get(model)
        if known is not None:
            return known
        spec = CATALOGUE.get(model)
        return _FREE if spec is not None and spec.free else self._dearest

    def cost_nanos(self, model: str, usage: dict[str, Any]) -> int:
        """What the upstream's ``usage`` costs, cached prompt tokens at their rate."""
        details = usage.get("prompt_tokens_details")
        cached = details.get("cached_tokens") if isinstance(details, dict) else 0
        return self.price(model).nanos(
            _count(usage.get("prompt_tokens")),
            _count(cached),
            _count(usage.get("completion_tokens")),
        )

    def estimate_nanos(self, model: str, prompt_tokens: int, max_tokens: int) -> int:
        """The most an answer can cost: its prompt, uncached, and every token it may write."""
        return self.price(model).nanos(prompt_tokens, 0, max_tokens)


def money(nanos: int) -> float:
    """Nano-units as an amount of the currency, to the nano-unit: the amounts a caller sees add
    up to the totals ``GET /usage`` reports (a millionth was once the step, and a cheap answer's
    cost was off by several percent)."""
    return round(nanos / NANOS, 9)


def amount_text(nanos: int) -> str:
    """An amount as people write it in a message: exact decimals, never an exponent
    (``0.00005``, ``2``)."""
    sign = "-" if nanos < 0 else ""
    whole, fraction = divmod(abs(nanos), NANOS)
    text = f"{whole}.{fraction:09d}".rstrip("0").rstrip(".")
    return sign + text


def to_nanos(amount: float) -> int:
    return round(amount * NANOS)


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _read_overrides(raw: dict[str, Any]) -> dict[str, Price]:
    prices: dict[str, Price] = {}
    for model, entry in raw.items():
        fields = entry if isinstance(entry, dict) else {}
        values = [fields.get(name) for name in ("input", "cached_input", "output")]
        if values[1] is None:
            values[1] = values[0]
        if set(fields) - {"input", "cached_input", "output"} or not all(
            isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v < math.inf
            for v in values
        ):
            raise RelayError(
                ErrorCode.CONFIGURATION_ERROR,
                f"MODEL_PRICES[{model!r}] needs non-negative numbers input and output "
                "(and optionally cached_input), per million tokens",
            )
        prices[model] = Price(float(values[0]), float(values[1]), float(values[2]))  # type: ignore[arg-type]
    return prices


@dataclass(frozen=True, slots=True)
class SpendLimits:
    """Budgets in nanos; ``None``: no budget for that period."""

    per_day: int | None = None
    per_month: int | None = None

    @property
    def any(self) -> bool:
        return self.per_day is not None or self.per_month is not None


def spend_limits(settings: Settings, claims: AccessClaims | None) -> SpendLimits:
    """The caller's budgets: the token's, else the deployment's defaults (0: none). Budgets
    need a caller and the table; without either there are none."""
    if claims is None or not settings.conversations_table:
        return SpendLimits()

    def pick(own: float | None, default: float) -> int | None:
        if own is not None:
            return to_nanos(own)
        return to_nanos(default) if default > 0 else None

    return SpendLimits(
        pick(claims.limits.spend_per_day, settings.default_spend_per_day),
        pick(claims.limits.spend_per_month, settings.default_spend_per_month),
    )


# An answer that ended without the upstream's usage (a deadline, a stall, a broken stream, a
# client gone) is charged this estimate: the prompt's estimate plus one token per
# ``CHARS_PER_TOKEN`` characters of everything delivered (text, reasoning, tool arguments).
CHARS_PER_TOKEN = 2


def answer_usage(outcome: Outcome | None, prompt_tokens: int) -> dict[str, Any]:
    """The usage an answer is charged: the upstream's when it reported one, else the estimate
    (``"estimated": true``); nothing for an answer that never began."""
    if outcome is None:
        return {}
    usage = outcome.usage or {}
    if usage.get("total_tokens"):
        return usage
    completion = math.ceil(outcome.delivered_chars / CHARS_PER_TOKEN)
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion,
        "total_tokens": prompt_tokens + completion,
        "estimated": True,
    }
