"""The Response object: what ``POST /v1/responses`` answers, streams and stores.

Fields the request set are echoed (``instructions``, ``tools``, ``temperature``...); ``usage``
is the upstream's, in the Responses API's names, plus the answer's ``cost`` (in the deployment's
``CURRENCY``, as ``/v1/chat/completions`` reports it) when it is known.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

OBJECT = "response"


@dataclass(slots=True)
class ResponseHead:
    """What every snapshot of one response repeats. ``token`` makes its item ids unique."""

    id: str
    created_at: int
    model: str
    store: bool
    echo: dict[str, Any] = field(default_factory=dict)

    @property
    def token(self) -> str:
        """The response id's own part, which every item id of the response carries."""
        return self.id.removeprefix("resp_")

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        *,
        usage: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        incomplete_details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A snapshot of the response with ``status`` and the items so far."""
        return {
            "id": self.id,
            "object": OBJECT,
            "created_at": self.created_at,
            "status": status,
            "background": False,
            "error": error,
            "incomplete_details": incomplete_details,
            "model": self.model,
            "output": list(output),
            "usage": usage,
            "store": self.store,
            "service_tier": "default",
            **self.echo,
        }


def usage_object(usage: dict[str, Any] | None, cost: float | None = None) -> dict[str, Any] | None:
    """Zhipu's ``usage`` in the Responses API's names (``None`` stays ``None``), with the
    answer's ``cost`` when there is one (an extra field: the SDKs keep it)."""
    if usage is None:
        return None
    prompt = int(usage.get("prompt_tokens") or 0)
    completion = int(usage.get("completion_tokens") or 0)
    prompt_details = usage.get("prompt_tokens_details") or {}
    completion_details = usage.get("completion_tokens_details") or {}
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": int(prompt_details.get("cached_tokens") or 0)},
        "output_tokens": completion,
        "output_tokens_details": {
            "reasoning_tokens": int(completion_details.get("reasoning_tokens") or 0)
        },
        "total_tokens": int(usage.get("total_tokens") or prompt + completion),
        **({} if cost is None else {"cost": cost}),
    }
