"""The models the relay knows: each one's limits and what it takes, in one place.

Request checks (output caps, `thinking`, `reasoning_effort`, `tool_stream`, content parts) and
`GET /v1/models` both read this catalogue, so a model's rules cannot drift apart. Figures follow
Zhipu's published limits (late 2026). A model the catalogue lacks but the operator allow-listed
(`ALLOWED_MODELS`) gets `unlisted(name)`: conservative limits, no code change needed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

from glm_relay.config import Settings

# How a model treats `thinking`:
# - "none": it does not reason (legacy glm-4-*): `enabled` is refused, `disabled` is a no-op;
# - "default_on": it reasons unless told `disabled` (GLM-4.5 and later);
# - "always": it reasons, and `disabled` is refused (glm-5.3, glm-5.3-flash*);
# - "passthrough": unknown to the catalogue: `thinking` goes upstream as asked.
Thinking = Literal["none", "default_on", "always", "passthrough"]

_K = 1024
EFFORTS_52 = ("low", "medium", "high", "max")
EFFORTS_53 = ("low", "high", "max")
# Every value some Zhipu model takes: what an unlisted model may be sent.
ALL_EFFORTS = ("low", "medium", "high", "max")


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model: context window and output limit in tokens, and what it takes."""

    name: str
    context_window: int
    max_output: int
    vision: bool = False
    thinking: Thinking = "default_on"
    reasoning_efforts: tuple[str, ...] = ()  # empty: `reasoning_effort` is refused
    tool_stream: bool = False  # streams tool-call arguments when asked (`tool_stream`)
    # Thinking on, it refuses an assistant tool-call turn sent back without `reasoning_content`
    # (GLM-5.1 and later): the translation fills in a placeholder (`upstream/translate.py`).
    call_reasoning: bool = False
    free: bool = False
    listed: bool = True  # False: an operator's name the catalogue does not know

    def describe(self) -> dict[str, Any]:
        """The limits ``GET /v1/models`` shows beside OpenAI's fields."""
        return {
            "context_window": self.context_window,
            "max_output_tokens": self.max_output,
            "input_modalities": ["text", "image", "video", "file"] if self.vision else ["text"],
            "thinking": self.thinking,
            "reasoning_efforts": list(self.reasoning_efforts),
            "tool_stream": self.tool_stream,
            "free": self.free,
            "listed": self.listed,
        }

    def thinks(self, thinking: str | None) -> bool:
        """Whether the model reasons for a request's ``thinking`` (None: the model's default)."""
        if self.thinking in ("none", "passthrough"):
            return thinking == "enabled"
        return self.thinking == "always" or thinking != "disabled"


def _text(name: str, context: int, out: int, *, free: bool = False) -> ModelSpec:
    return ModelSpec(name, context, out, tool_stream=True, free=free)


def _needs_call_reasoning(spec: ModelSpec) -> ModelSpec:
    """A GLM-5.1-or-later model: thinking on, its tool-call turns must carry their reasoning."""
    return replace(spec, call_reasoning=True)


def _legacy(name: str, context: int = 128_000) -> ModelSpec:
    return ModelSpec(name, context, 4 * _K, thinking="none")


_SPECS: tuple[ModelSpec, ...] = (
    # Current text models.
    _needs_call_reasoning(
        ModelSpec("glm-5.3", 1_000_000, 128 * _K, False, "always", EFFORTS_53, True)
    ),
    _needs_call_reasoning(
        ModelSpec("glm-5.2", 1_000_000, 128 * _K, False, "default_on", EFFORTS_52, True)
    ),
    _needs_call_reasoning(_text("glm-5.1", 200_000, 128 * _K)),
    _text("glm-5", 200_000, 128 * _K),
    _text("glm-5-turbo", 200_000, 128 * _K),
    _text("glm-4.7", 200_000, 128 * _K),
    _text("glm-4.7-flash", 200_000, 128 * _K, free=True),
    _text("glm-4.7-flashx", 200_000, 128 * _K),
    _text("glm-4.6", 200_000, 128 * _K),
    *(ModelSpec(n, 128_000, 96 * _K) for n in ("glm-4.5", "glm-4.5-air", "glm-4.5-x")),
    ModelSpec("glm-4.5-airx", 128_000, 96 * _K),
    ModelSpec("glm-4.5-flash", 128_000, 96 * _K, free=True),
    ModelSpec("glm-4-32b-0414-128k", 128_000, 16 * _K, thinking="none"),
    # Vision models (images, video, files).
    _needs_call_reasoning(
        ModelSpec("glm-5.3-flash", 1_000_000, 128 * _K, True, "always", EFFORTS_53, True)
    ),
    _needs_call_reasoning(
        ModelSpec("glm-5.3-flashx", 1_000_000, 128 * _K, True, "always", EFFORTS_53, True)
    ),
    ModelSpec("glm-5v-turbo", 200_000, 128 * _K, True, tool_stream=True),
    ModelSpec("glm-4.6v", 128_000, 32 * _K, True, tool_stream=True),
    ModelSpec("glm-4.6v-flash", 128_000, 32 * _K, True, tool_stream=True, free=True),
    ModelSpec("glm-4.6v-flashx", 128_000, 32 * _K, True, tool_stream=True),
    ModelSpec("glm-4.5v", 64_000, 16 * _K, True),
    # Legacy models that still answer: no reasoning, 4K output.
    *(_legacy(n) for n in ("glm-4-plus", "glm-4-air", "glm-4-airx", "glm-4-flash", "glm-4")),
    _legacy("glm-4-flashx"),
    _legacy("glm-4-long", 1_000_000),
)

CATALOGUE: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
DEFAULT_MODEL = "glm-4.7-flash"
# What ``MODEL_ALIASES`` is when unset: Claude Code's names out of the box. Its main model (an
# opus or sonnet name) becomes GLM-5.1, Zhipu's coding model; its small fast model (haiku: titles,
# summaries, quick checks) the free glm-4.7-flash. ``name*`` is a prefix; the longest match wins.
DEFAULT_ALIASES = {
    "claude-*": "glm-5.1",
    "claude-opus*": "glm-5.1",
    "claude-sonnet*": "glm-5.1",
    "claude-haiku*": "glm-4.7-flash",
}


def unlisted(name: str) -> ModelSpec:
    """An allow-listed model the catalogue does not know: a text model with conservative
    limits (128K context, 32K output), `thinking` and `reasoning_effort` sent as asked,
    `tool_stream` sent when asked."""
    return ModelSpec(
        name,
        128_000,
        32 * _K,
        thinking="passthrough",
        reasoning_efforts=ALL_EFFORTS,
        tool_stream=True,
        listed=False,
    )


def allowed_models(settings: Settings) -> tuple[str, ...]:
    """``ALLOWED_MODELS``, or the whole catalogue when it is not set."""
    return settings.allowed_models or tuple(CATALOGUE)


def default_model(settings: Settings) -> str:
    """``DEFAULT_MODEL``, or the catalogue's default (a current free model)."""
    return settings.default_model or DEFAULT_MODEL


def aliased(settings: Settings, name: str) -> str:
    """The model ``name`` stands for: itself when it is an allowed model, else its alias (an
    exact name first, then the longest matching ``prefix*``), else itself."""
    if name in allowed_models(settings):
        return name
    aliases = DEFAULT_ALIASES if settings.model_aliases is None else settings.model_aliases
    if name in aliases:
        return aliases[name]
    best = ""
    for pattern in aliases:
        if pattern.endswith("*") and name.startswith(pattern[:-1]) and len(pattern) > len(best):
            best = pattern
    return aliases[best] if best else name


def allowed_spec(settings: Settings, name: str) -> ModelSpec | None:
    """The spec of ``name`` if callers may ask for it here, else ``None``."""
    if name not in allowed_models(settings):
        return None
    return CATALOGUE.get(name) or unlisted(name)
