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
                namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE),
                service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE),
            )
        return self._metrics

    def key_sidelined(self, fingerprint: str, reason: str, cooloff_seconds: float) -> None:
        """One line each time the upstream's refusal takes a key out of the pool for a while;
        the key is named by its fingerprint only."""
        self.logger.warning(
            "upstream key sidelined",
            extra={"key": fingerprint, "reason": reason, "cooloff_seconds": cooloff_seconds},
        )

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
            usage = stream.usage or {}
            fields.update(
                model=stream.model,
                outcome=stream.status,
                error_code=stream.error_code,
                finish_reason=stream.finish_reason,
                prompt_tokens=usage.get("prompt_tokens"),
                completion_tokens=usage.get("completion_tokens"),
                total_tokens=usage.get("total_tokens"),
                first_token_ms=_round(stream.first_token_ms),
                duration_ms=_round(stream.duration_ms),
                upstream_attempts=stream.attempts,
                upstream_id=stream.upstream_id,
            )
            if self.log_content:
                fields["answer"] = "".join(stream.answer)
        if self.log_content and question is not None:
            fields["question"] = question
        self.logger.info("request", extra={k: v for k, v in fields.items() if v is not None})
        self._emit_metrics(fields)

    def _emit_metrics(self, fields: dict[str, Any]) -> None:
        from aws_lambda_powertools.metrics import MetricUnit

        metrics = self.metrics
        metrics.add_dimension("outcome", str(fields["outcome"]))
        metrics.add_metric(name="Requests", unit=MetricUnit.Count, value=1)
        for name, key, unit in (
            ("FirstTokenLatency", "first_token_ms", MetricUnit.Milliseconds),
            ("Duration", "duration_ms", MetricUnit.Milliseconds),
            ("PromptTokens", "prompt_tokens", MetricUnit.Count),
            ("CompletionTokens", "completion_tokens", MetricUnit.Count),
        ):
            if fields.get(key) is not None:
                metrics.add_metric(name=name, unit=unit, value=fields[key])
        metrics.flush_metrics()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)
