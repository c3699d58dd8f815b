"""The summary line and EMF metrics of one answer: OpenTelemetry's GenAI names, tokens and cost
per model, errors by code, sidelined keys (what the template's dashboard charts)."""

from __future__ import annotations

import json

import pytest

from glm_relay.chat.relay import Outcome
from glm_relay.web import telemetry as names
from glm_relay.web.telemetry import Telemetry


class Lines:
    """Stands in for the container's logger: a real one would stay bound to this test's
    captured output after the test (and fail on every later line)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict]] = []

    def info(self, message: str, extra: dict) -> None:
        self.lines.append(("INFO", message, extra))

    def warning(self, message: str, extra: dict) -> None:
        self.lines.append(("WARNING", message, extra))


def recorded() -> tuple[Telemetry, Lines]:
    telemetry, lines = Telemetry(), Lines()
    telemetry._logger = lines
    return telemetry, lines


def emitted(capsys: pytest.CaptureFixture[str]) -> list[dict]:
    """The EMF blobs printed on standard output."""
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.strip()]
    return [line for line in lines if "_aws" in line]


def metric_sets(metrics: list[dict]) -> dict[tuple[str, ...], dict]:
    """Each EMF blob by its dimension names, with its metric names and values."""
    out = {}
    for blob in metrics:
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        dimensions = tuple(d for group in directive["Dimensions"] for d in group if d != "service")
        out[dimensions] = {m["Name"]: single(blob[m["Name"]]) for m in directive["Metrics"]} | {
            d: blob[d] for d in dimensions
        }
    return out


def single(value: object) -> object:
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def answer() -> Outcome:
    outcome = Outcome("req-1", "glm-4.7", 0.0, status="complete", finish_reason="stop")
    outcome.usage = {
        "prompt_tokens": 120,
        "completion_tokens": 30,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 100},
    }
    outcome.first_token_ms, outcome.duration_ms, outcome.cost, outcome.currency = (
        250.0,
        900.0,
        0.000089,
        "USD",
    )
    outcome.upstream_id = "up-1"
    return outcome


def test_an_answer_is_logged_and_measured_under_the_genai_names(capsys) -> None:
    telemetry, log = recorded()
    telemetry.request_done(None, status=200, outcome="ok", stream=answer(), request_id="r")

    metrics = emitted(capsys)
    ((_, message, line),) = log.lines
    assert message == "request"
    assert line["gen_ai.request.model"] == "glm-4.7"
    assert line["gen_ai.operation.name"] == "chat"
    assert line["gen_ai.usage.input_tokens"] == 120
    assert line["gen_ai.usage.output_tokens"] == 30
    assert line["gen_ai.usage.cache_read.input_tokens"] == 100
    assert line["gen_ai.response.time_to_first_chunk"] == 0.25
    assert line["gen_ai.response.finish_reasons"] == ["stop"]
    assert (line["cost"], line["currency"]) == (0.000089, "USD")
    sets = metric_sets(metrics)
    assert sets[("outcome",)][names.REQUESTS] == 1
    assert sets[("outcome",)][names.TIME_TO_FIRST_CHUNK] == 0.25
    by_model = sets[(names.MODEL_DIMENSION,)]
    assert by_model[names.MODEL_DIMENSION] == "glm-4.7"
    assert (by_model[names.INPUT_TOKENS], by_model[names.OUTPUT_TOKENS]) == (120, 30)
    assert by_model[names.CACHED_TOKENS] == 100 and by_model[names.COST] == 0.000089
    assert names.TIME_TO_FIRST_CHUNK == "gen_ai.client.operation.time_to_first_chunk"


def test_an_error_is_counted_by_its_code_and_a_sidelined_key_by_reason(capsys) -> None:
    telemetry, log = recorded()
    telemetry.request_done(
        None, status=429, outcome="rejected", error_code="budget_exceeded", request_id="r"
    )
    telemetry.key_sidelined("key-0123456789ab", "invalid", 300)

    sets = metric_sets(emitted(capsys))
    assert sets[(names.ERROR_DIMENSION,)] == {names.ERRORS: 1, "error.type": "budget_exceeded"}
    assert sets[("reason",)] == {names.SIDELINED_KEYS: 1, "reason": "invalid"}
    assert log.lines[-1] == (
        "WARNING",
        "upstream key sidelined",
        {"key": "key-0123456789ab", "reason": "invalid", "cooloff_seconds": 300},
    )
