"""The model catalogue: what each model takes and how it answers, in one place.

Validation (content parts, `max_tokens`, `thinking`, `reasoning_effort`, `tool_stream`) and the
answer (reasoning on by default or not) both read it, so a model's rules cannot drift apart.
Figures follow the published limits; where none is published the value is a plausible guess
(marked below) that is only ever used to refuse absurd requests.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

# How a model treats `thinking`:
# - "optional": no reasoning unless `thinking: {"type": "enabled"}` (legacy glm-4-*, glm-z1-*);
# - "default_on": reasoning unless `{"type": "disabled"}` (GLM-4.5 and later);
# - "always": reasoning, and `{"type": "disabled"}` is refused (glm-5.3, glm-5.3-flash*).
ThinkingMode = Literal["optional", "default_on", "always"]

_K = 1024
LEGACY_OUTPUT = 4 * _K


@dataclass(frozen=True)
class ModelSpec:
    """One model's limits and capabilities."""

    name: str
    vision: bool  # takes content part arrays (images, video, files)
    context: int  # prompt tokens it takes
    max_output: int  # the highest `max_tokens` it accepts
    thinking: ThinkingMode = "optional"
    reasoning_efforts: frozenset[str] = frozenset()  # empty: `reasoning_effort` is refused
    tool_stream: bool = False  # streams tool-call arguments when `tool_stream` is true
    # With thinking on, an assistant tool-call turn sent back must carry its `reasoning_content`
    # (GLM-5.1 and later).
    needs_call_reasoning: bool = False


_EFFORTS_52 = frozenset({"low", "medium", "high", "max"})  # unpublished for 5.2: be lenient
_EFFORTS_53 = frozenset({"low", "high", "max"})


def _text(name: str, context: int, out: int, thinking: ThinkingMode = "default_on") -> ModelSpec:
    return ModelSpec(name, False, context, out, thinking, tool_stream=True)


def _5_1_on(spec: ModelSpec) -> ModelSpec:
    """A GLM-5.1-or-later model: its tool-call turns must come back with their reasoning."""
    return replace(spec, needs_call_reasoning=True)


_SPECS: tuple[ModelSpec, ...] = (
    # Current text models.
    _5_1_on(ModelSpec("glm-5.3", False, 1_000_000, 128 * _K, "always", _EFFORTS_53, True)),
    _5_1_on(ModelSpec("glm-5.2", False, 1_000_000, 128 * _K, "default_on", _EFFORTS_52, True)),
    _5_1_on(_text("glm-5.1", 200_000, 128 * _K)),
    _text("glm-5", 200_000, 128 * _K),
    _text("glm-5-turbo", 200_000, 128 * _K),
    _text("glm-4.7", 200_000, 128 * _K),
    _text("glm-4.7-flash", 200_000, 128 * _K),
    _text("glm-4.7-flashx", 200_000, 128 * _K),
    _text("glm-4.6", 200_000, 128 * _K),
    *(
        ModelSpec(name, False, 128_000, 96 * _K, "default_on")
        for name in ("glm-4.5", "glm-4.5-air", "glm-4.5-x", "glm-4.5-airx", "glm-4.5-flash")
    ),
    ModelSpec("glm-4-32b-0414-128k", False, 128_000, 16 * _K),  # output limit: a guess
    # Vision models.
    _5_1_on(ModelSpec("glm-5.3-flash", True, 1_000_000, 128 * _K, "always", _EFFORTS_53, True)),
    _5_1_on(ModelSpec("glm-5.3-flashx", True, 1_000_000, 128 * _K, "always", _EFFORTS_53, True)),
    ModelSpec("glm-5v-turbo", True, 200_000, 128 * _K, "default_on", tool_stream=True),  # a guess
    *(
        ModelSpec(name, True, 128_000, 32 * _K, "default_on", tool_stream=True)
        for name in ("glm-4.6v", "glm-4.6v-flash", "glm-4.6v-flashx")
    ),
    ModelSpec("glm-4.5v", True, 64_000, 16 * _K, "default_on"),
    # Legacy models that still answer: no reasoning unless asked, 4K output.
    *(
        ModelSpec(name, False, 128_000, LEGACY_OUTPUT)
        for name in ("glm-4", "glm-4-plus", "glm-4-air", "glm-4-airx", "glm-4-flash")
    ),
    ModelSpec("glm-4-flashx", False, 128_000, LEGACY_OUTPUT),
    ModelSpec("glm-4-long", False, 1_000_000, LEGACY_OUTPUT),
    *(
        ModelSpec(name, False, 128_000, 32 * _K)
        for name in ("glm-z1-air", "glm-z1-airx", "glm-z1-flash")
    ),
)

CATALOGUE: dict[str, ModelSpec] = {spec.name: spec for spec in _SPECS}
TEXT_MODELS: tuple[str, ...] = tuple(s.name for s in _SPECS if not s.vision)
VISION_MODELS: tuple[str, ...] = tuple(s.name for s in _SPECS if s.vision)


def spec_for(model: object) -> ModelSpec:
    """The model's spec; a name the server was told to accept but the catalogue lacks is treated
    as a text model with generous limits, so `--models` can add names freely."""
    if isinstance(model, str) and model in CATALOGUE:
        return CATALOGUE[model]
    return ModelSpec(str(model), False, 1_000_000, 128 * _K)


def thinking_on(body: dict[str, Any], spec: ModelSpec) -> bool:
    """Whether the model thinks for this body: `thinking` if given, else the model's default."""
    thinking = body.get("thinking")
    kind = thinking.get("type") if isinstance(thinking, dict) else None
    if kind == "disabled":
        return spec.thinking == "always"
    return kind == "enabled" or spec.thinking != "optional"
