"""One structured summary line and one set of EMF metrics per request, through Powertools.

Nothing is logged per chunk (the hot path stays clean), and neither prompts nor answers are logged
unless ``LOG_CONTENT`` is on. Keys, tokens and query strings never reach a log line: the summary is
built from an allow-list of fields, and the raw query is redacted before it is written.
Powertools is imported on the first request, not at module import.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from glm_relay.web.redaction import redact_query

if TYPE_CHECKING:
    from glm_relay.chat.relay import Outcome
    from glm_relay.web.request import HttpRequest

SERVICE = "glm-relay"
NAMESPACE = "GlmRelay"


class Telemetry:
    """The container's logger and metrics, created lazily."""

    def __init__(self, *, log_content: bool = False) -> None:
        self.log_content = log_content
        self._logger: Any = None
        self._metrics: Any = None

    @property
    def logger(self) -> Any:
        if self._logger is None:
            from aws_lambda_powertools import Logger

            self._logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
        return self._logger

    @property
    def metrics(self) -> Any:
        if self._metrics is None:
            from aws_lambda_powertools import Metrics

            self._metrics = Metrics(
                namespace=_namespace(),
                service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE),
            )
        return self._metrics

    def key_sidelined(self, fingerprint: str, reason: str, cooloff_seconds: float) -> None:
        """One line (and one ``SidelinedKeys`` count) each time the upstream's refusal takes a
        key out of the pool for a while; the key is named by its fingerprint only."""
        from aws_lambda_powertools.metrics import MetricUnit

        self.logger.warning(
            "upstream key sidelined",
            extra={"key": fingerprint, "reason": reason, "cooloff_seconds": cooloff_seconds},
        )
        _flush_set("reason", reason, [(SIDELINED_KEYS, MetricUnit.Count, 1)])

    def request_done(
        self,
        request: HttpRequest | None,
        *,
        status: int,
        outcome: str,
        stream: Outcome | None = None,
        error_code: str | None = None,
        subject: str | None = None,
        question: str | None = None,
        request_id: str | None = None,
    ) -> None:
        """Write the request's summary line and metrics."""
        fields: dict[str, Any] = {
            "request_id": request.request_id if request else request_id,
            "method": request.method if request else None,
            "path": request.path if request else None,
            "query": redact_query(request.raw_query) if request and request.raw_query else None,
            "status": status,
            "outcome": outcome,
            "error_code": error_code,
            "sub": subject,
        }
        if stream is not None:
            fields.update(_answer_fields(stream))
            if self.log_content:
                fields["answer"] = "".join(stream.answer)
        if self.log_content and question is not None:
            fields["question"] = question
        self.logger.info("request", extra={k: v for k, v in fields.items() if v is not None})
        self._emit_metrics(fields)

    def bookkeeping_lost(self, stream: Outcome, unsettled: list[str]) -> None:
        """One line for an answer whose bookkeeping failed or never finished: what was not
        settled (``quota``, ``conversation_turn``, ``stream_record``) and what it would have
        counted, so that it can be put right by hand."""
        usage = stream.usage or {}
        fields = {
            "request_id": stream.request_id,
            "unsettled": unsettled,
            "outcome": stream.status,
            "gen_ai.request.model": stream.model,
            "total_tokens": usage.get("total_tokens"),
        }
        self.logger.warning(
            "bookkeeping not settled", extra={k: v for k, v in fields.items() if v is not None}
        )

    def response_not_stored(self, response_id: str, size: int) -> None:
        """One line for a response asked to be stored but over ``MAX_STORED_BYTES`` compressed
        (the Responses API's store): its id and size, never its content."""
        self.logger.warning(
            "response not stored: too large",
            extra={"response_id": response_id, "compressed_bytes": size},
        )

    def _emit_metrics(self, fields: dict[str, Any]) -> None:
        """Three EMF sets: by outcome, by model (tokens and cost), by error code."""
        from aws_lambda_powertools.metrics import MetricUnit

        metrics = self.metrics
        metrics.add_dimension("outcome", str(fields["outcome"]))
        metrics.add_metric(name=REQUESTS, unit=MetricUnit.Count, value=1)
        for name, key, unit in (
            (TIME_TO_FIRST_CHUNK, "gen_ai.response.time_to_first_chunk", MetricUnit.Seconds),
            (DURATION, "duration_ms", MetricUnit.Milliseconds),
        ):
            if fields.get(key) is not None:
                metrics.add_metric(name=name, unit=unit, value=fields[key])
        metrics.flush_metrics()
        model = fields.get("gen_ai.request.model")
        if model is not None:
            count, no_unit = MetricUnit.Count, MetricUnit.NoUnit
            by_model = [
                (name, no_unit if name == COST else count, fields.get(key) or 0)
                for name, key in MODEL_METRICS.items()
            ]
            _flush_set(MODEL_DIMENSION, str(model), by_model)
        if fields.get("error_code"):
            _flush_set(ERROR_DIMENSION, str(fields["error_code"]), [(ERRORS, MetricUnit.Count, 1)])


def _namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE)


def _flush_set(dimension: str, value: str, metrics: list[tuple[str, Any, Any]]) -> None:
    """One EMF set of its own, under one dimension: ``(name, unit, value)`` each."""
    from aws_lambda_powertools.metrics import EphemeralMetrics

    ephemeral = EphemeralMetrics(namespace=_namespace())
    ephemeral.add_dimension(dimension, value)
    for name, unit, amount in metrics:
        ephemeral.add_metric(name=name, unit=unit, value=amount)
    ephemeral.flush_metrics()


# Metric names and dimensions (the template's dashboard reads the same ones): OpenTelemetry's
# GenAI names where one exists.
REQUESTS = "Requests"
ERRORS = "Errors"
ERROR_DIMENSION = "error.type"
DURATION = "Duration"
TIME_TO_FIRST_CHUNK = "gen_ai.client.operation.time_to_first_chunk"
MODEL_DIMENSION = "gen_ai.request.model"
INPUT_TOKENS = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
CACHED_TOKENS = "gen_ai.usage.cache_read.input_tokens"
COST = "Cost"
SIDELINED_KEYS = "SidelinedKeys"
MODEL_METRICS = {
    INPUT_TOKENS: INPUT_TOKENS,
    OUTPUT_TOKENS: OUTPUT_TOKENS,
    CACHED_TOKENS: CACHED_TOKENS,
    COST: "cost",
}


def _answer_fields(stream: Outcome) -> dict[str, Any]:
    """A relayed answer's log fields, named as OpenTelemetry's GenAI conventions name them."""
    usage = stream.usage or {}
    details = usage.get("prompt_tokens_details")
    first = stream.first_token_ms
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "zhipu",
        "gen_ai.request.model": stream.model,
        "gen_ai.response.id": stream.upstream_id,
        "gen_ai.response.finish_reasons": [stream.finish_reason] if stream.finish_reason else None,
        "gen_ai.usage.input_tokens": usage.get("prompt_tokens"),
        "gen_ai.usage.output_tokens": usage.get("completion_tokens"),
        "gen_ai.usage.cache_read.input_tokens": (
            details.get("cached_tokens") if isinstance(details, dict) else None
        ),
        "gen_ai.response.time_to_first_chunk": None if first is None else round(first / 1000, 5),
        "cost": stream.cost,
        "currency": stream.currency or None,
        "outcome": stream.status,
        "error_code": stream.error_code,
        "duration_ms": _round(stream.duration_ms),
        "upstream_attempts": stream.attempts,
        "deferred": stream.deferred or None,
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
