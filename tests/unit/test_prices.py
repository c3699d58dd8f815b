"""The price table and what an answer is charged: cached input at its rate, both currencies,
the operator's overrides, and the estimate for an answer that ended without the upstream's usage."""

from __future__ import annotations

import json

import pytest

from glm_relay.access import AccessClaims, TokenLimits
from glm_relay.chat.prices import (
    NANOS,
    PRICES_DATE,
    PriceTable,
    amount_text,
    answer_usage,
    money,
    spend_limits,
)
from glm_relay.chat.relay import Outcome
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError


def usage(prompt: int, completion: int, cached: int = 0) -> dict[str, object]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def test_the_table_has_a_date_and_cached_input_is_charged_at_its_own_rate() -> None:
    assert PRICES_DATE == "2026-12"
    table = PriceTable("USD")
    # glm-4.7: 0.60 input, 0.11 cached, 2.20 output per million tokens
    fresh = table.cost_nanos("glm-4.7", usage(1_000_000, 1_000_000))
    cached = table.cost_nanos("glm-4.7", usage(1_000_000, 1_000_000, cached=400_000))
    assert money(fresh) == 2.80
    assert money(cached) == pytest.approx(0.60 * 0.6 + 0.11 * 0.4 + 2.20)


def test_usd_and_cny_tables_differ_and_free_models_cost_nothing() -> None:
    one_million_each = usage(1_000_000, 1_000_000)
    assert money(PriceTable("USD").cost_nanos("glm-5", one_million_each)) == 4.20
    assert money(PriceTable("CNY").cost_nanos("glm-5", one_million_each)) == 22.0
    assert PriceTable("USD").cost_nanos("glm-4.7-flash", one_million_each) == 0
    with pytest.raises(RelayError) as raised:
        PriceTable("EUR")
    assert raised.value.code is ErrorCode.CONFIGURATION_ERROR


def test_overrides_win_and_an_unpriced_model_costs_as_much_as_the_dearest() -> None:
    table = PriceTable(
        "USD", {"glm-4.7": {"input": 1, "output": 2}, "my-model": {"input": 0.5, "output": 0.5}}
    )
    assert money(table.cost_nanos("glm-4.7", usage(1_000_000, 0, cached=1_000_000))) == 1.0
    assert money(table.cost_nanos("my-model", usage(1_000_000, 1_000_000))) == 1.0
    assert money(table.cost_nanos("glm-4.5-air", usage(0, 1_000_000))) == 4.40
    with pytest.raises(RelayError):
        PriceTable("USD", {"glm-4.7": {"input": -1, "output": 2}})


def test_the_reservation_is_the_prompt_and_every_token_max_tokens_allows() -> None:
    assert money(PriceTable("USD").estimate_nanos("glm-5", 1_000, 9_000)) == pytest.approx(
        (1_000 * 1.00 + 9_000 * 3.20) / 1e6
    )


def test_an_answer_without_the_upstreams_usage_is_charged_for_all_it_delivered() -> None:
    outcome = Outcome("r", "glm-4.7", 0.0, status="error")
    outcome.answer = ["Hi"]  # the text
    outcome.delivered_chars = 2 + 2_190  # ... and 2,190 characters of reasoning
    charged = answer_usage(outcome, prompt_tokens=300)
    assert charged == {
        "prompt_tokens": 300,
        "completion_tokens": 1_096,
        "total_tokens": 1_396,
        "estimated": True,
    }
    reported = usage(10, 5)
    outcome.usage = reported
    assert answer_usage(outcome, 300) is reported
    assert answer_usage(None, 300) == {}


def test_budgets_come_from_the_token_else_the_deployment() -> None:
    settings = Settings.from_env(
        {}, conversations_table="t", default_spend_per_day=2.5, default_spend_per_month=0
    )
    plain = AccessClaims("a", 0)
    own = AccessClaims("b", 0, TokenLimits(spend_per_day=0.25, spend_per_month=0))
    assert spend_limits(settings, plain).per_day == 2_500_000_000
    assert spend_limits(settings, plain).per_month is None
    assert (spend_limits(settings, own).per_day, spend_limits(settings, own).per_month) == (
        250_000_000,
        0,
    )
    assert not spend_limits(settings, None).any
    assert not spend_limits(Settings.from_env({}, default_spend_per_day=1), plain).any


def test_amounts_are_exact_to_the_nano_unit_and_written_without_exponents() -> None:
    # 7 prompt and 18 output tokens of glm-4.7: 0.0000438 USD, not 0.000044.
    cost = PriceTable("USD").cost_nanos("glm-4.7", usage(7, 18))
    assert cost == 43_800 and money(cost) == 0.0000438
    assert money(cost) * 8 == pytest.approx(money(cost * 8), abs=1e-15)
    assert amount_text(cost) == "0.0000438"
    assert amount_text(2 * NANOS) == "2" and amount_text(0) == "0"
    assert amount_text(1) == "0.000000001"


@pytest.mark.parametrize(
    "raw", ['{"m": {"input": Infinity, "output": 1}}', '{"m": {"input": 1, "output": NaN}}']
)
def test_a_price_that_is_not_a_finite_number_is_refused(raw: str) -> None:
    # json.loads reads Infinity and NaN; an infinite price once failed every request on it.
    with pytest.raises(RelayError):
        PriceTable("USD", json.loads(raw))


@pytest.mark.parametrize("raw", ["inf", "nan", "-inf"])
def test_a_default_budget_that_is_not_a_finite_number_is_refused(raw: str) -> None:
    with pytest.raises(ValueError, match="DEFAULT_SPEND_PER_DAY"):
        Settings.from_env({"DEFAULT_SPEND_PER_DAY": raw})
