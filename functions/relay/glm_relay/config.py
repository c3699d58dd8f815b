"""Every setting of the function, in one place: explicit argument > environment > default.

Each field names its environment variable; the README's configuration table lists them all.

Example:
    settings = Settings.from_env()                      # Lambda: from the environment
    settings = Settings.from_env({}, zhipu_base_url=u)  # tests: explicit values win
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any


def _env(name: str) -> dict[str, str]:
    return {"env": name}


@dataclass(frozen=True, slots=True)
class Settings:
    """The function's configuration; immutable for the life of a container."""

    # Upstream
    zhipu_secret_id: str = field(default="", metadata=_env("ZHIPU_SECRET_ID"))
    zhipu_base_url: str = field(
        default="https://open.bigmodel.cn/api/paas/v4", metadata=_env("ZHIPU_BASE_URL")
    )
    zhipu_auth_mode: str = field(default="jwt", metadata=_env("ZHIPU_AUTH_MODE"))
    jwt_ttl_seconds: int = field(default=3600, metadata=_env("ZHIPU_JWT_TTL_SECONDS"))
    jwt_renew_before_seconds: int = field(default=300, metadata=_env("ZHIPU_JWT_RENEW_SECONDS"))
    secret_max_age_seconds: int = field(default=900, metadata=_env("SECRET_MAX_AGE_SECONDS"))
    # Where secrets are read: "extension" (Parameters and Secrets Lambda Extension), "sdk"
    # (Powertools and boto3), or "auto" (the extension when its layer or port variable is there).
    secrets_source: str = field(default="auto", metadata=_env("SECRETS_SOURCE"))
    connect_timeout_seconds: float = field(default=5.0, metadata=_env("UPSTREAM_CONNECT_TIMEOUT"))
    idle_timeout_seconds: float = field(default=60.0, metadata=_env("UPSTREAM_IDLE_TIMEOUT"))
    # PEM file of the certificate authorities trusted for HTTPS (Zhipu, DynamoDB) instead of
    # certifi's bundle; verification itself is never turned off.
    tls_ca_bundle: str = field(default="", metadata=_env("TLS_CA_BUNDLE"))
    # Requests
    # Empty: the chat core's model catalogue decides (``glm_relay.chat.models``).
    default_model: str = field(default="", metadata=_env("DEFAULT_MODEL"))
    allowed_models: tuple[str, ...] = field(default=(), metadata=_env("ALLOWED_MODELS"))
    # Other names callers may use for catalogue models (Claude Code asks for claude-* names):
    # a JSON object or "name=model,prefix*=model"; replaces the defaults in chat/models.py.
    model_aliases: dict[str, str] | None = field(default=None, metadata=_env("MODEL_ALIASES"))
    # An operator ceiling on max_tokens below every model's own limit; 0: none.
    max_tokens_cap: int = field(default=0, metadata=_env("MAX_TOKENS_CAP"))
    # The max_tokens sent when a caller names none (bounds the quota reservation and the time
    # one answer can run); lowered to the model's limit and the ceiling.
    default_max_tokens: int = field(default=8192, metadata=_env("DEFAULT_MAX_TOKENS"))
    # Input limits sized for coding agents, whose requests carry their whole session (Claude
    # Code's first is about 50 KB): a function URL refuses invocation payloads over 6 MB itself,
    # and 800,000 characters is about 200K tokens, GLM-5.x's context. Quotas bound the cost.
    max_body_bytes: int = field(default=6_000_000, metadata=_env("MAX_BODY_BYTES"))
    # A larger limit for bodies that carry images, video or files for a vision model (behind
    # the REST API, which takes 10 MB payloads); 0 or below MAX_BODY_BYTES: MAX_BODY_BYTES.
    max_vision_body_bytes: int = field(default=0, metadata=_env("MAX_VISION_BODY_BYTES"))
    max_prompt_chars: int = field(default=800_000, metadata=_env("MAX_PROMPT_CHARS"))
    max_messages: int = field(default=2_000, metadata=_env("MAX_MESSAGES"))
    # Web search costs money per call: operators can turn it off (callers who ask get
    # web_search_disabled) and set the options of the tool the relay adds (a JSON object merged
    # over the defaults in chat/search.py).
    web_search: bool = field(default=True, metadata=_env("WEB_SEARCH"))
    web_search_options: dict[str, Any] = field(
        default_factory=dict, metadata=_env("WEB_SEARCH_OPTIONS")
    )
    # Stream
    keepalive_seconds: float = field(default=15.0, metadata=_env("KEEPALIVE_SECONDS"))
    deadline_margin_ms: int = field(default=2000, metadata=_env("DEADLINE_MARGIN_MS"))
    retry_attempts: int = field(default=3, metadata=_env("UPSTREAM_RETRY_ATTEMPTS"))
    retry_base_delay_seconds: float = field(default=0.25, metadata=_env("UPSTREAM_RETRY_DELAY"))
    retry_max_delay_seconds: float = field(default=4.0, metadata=_env("UPSTREAM_RETRY_MAX_DELAY"))
    # A pooled key Zhipu refused as invalid or out of balance gets no requests for this long.
    key_cooloff_seconds: float = field(default=300.0, metadata=_env("UPSTREAM_KEY_COOLOFF_SECONDS"))
    # Callers
    require_access_token: bool = field(default=True, metadata=_env("REQUIRE_ACCESS_TOKEN"))
    access_token_secret_id: str = field(default="", metadata=_env("ACCESS_TOKEN_SECRET_ID"))
    access_token_secret: str = field(default="", repr=False, metadata=_env("ACCESS_TOKEN_SECRET"))
    allowed_origins: tuple[str, ...] = field(default=("*",), metadata=_env("ALLOWED_ORIGINS"))
    # Callers: an identity provider's tokens (OIDC, JWKS), on when an issuer is set; see
    # access/provider.py and docs/identity-providers.md. Empty algorithms: every asymmetric one.
    access_token_issuer: str = field(default="", metadata=_env("ACCESS_TOKEN_ISSUER"))
    access_token_audience: tuple[str, ...] = field(
        default=(), metadata=_env("ACCESS_TOKEN_AUDIENCE")
    )
    access_token_jwks_url: str = field(default="", metadata=_env("ACCESS_TOKEN_JWKS_URL"))
    access_token_algorithms: tuple[str, ...] = field(
        default=(), metadata=_env("ACCESS_TOKEN_ALGORITHMS")
    )
    access_token_leeway_seconds: float = field(
        default=60.0, metadata=_env("ACCESS_TOKEN_LEEWAY_SECONDS")
    )
    access_token_user_claim: str = field(default="sub", metadata=_env("ACCESS_TOKEN_USER_CLAIM"))
    access_token_subject_prefix: str = field(
        default="", metadata=_env("ACCESS_TOKEN_SUBJECT_PREFIX")
    )
    access_token_required_scope: tuple[str, ...] = field(
        default=(), metadata=_env("ACCESS_TOKEN_REQUIRED_SCOPE")
    )
    access_token_required_group: tuple[str, ...] = field(
        default=(), metadata=_env("ACCESS_TOKEN_REQUIRED_GROUP")
    )
    access_token_group_claim: str = field(default="", metadata=_env("ACCESS_TOKEN_GROUP_CLAIM"))
    # The caller of a REST API event is who API Gateway's Cognito authorizer says (its sub), and
    # such an event without one is refused; function URL events are never read that way. On only
    # where every guarded API method has the authorizer (template.yaml: ApiCognitoUserPoolArn).
    trust_api_gateway_authorizer: bool = field(
        default=False, metadata=_env("TRUST_API_GATEWAY_AUTHORIZER")
    )
    # State
    conversations_table: str = field(default="", metadata=_env("CONVERSATIONS_TABLE"))
    conversation_budget_chars: int = field(
        default=16_000, metadata=_env("CONVERSATION_BUDGET_CHARS")
    )
    quota_requests_per_day: int = field(default=200, metadata=_env("QUOTA_REQUESTS_PER_DAY"))
    quota_tokens_per_day: int = field(default=200_000, metadata=_env("QUOTA_TOKENS_PER_DAY"))
    # Spend budgets in CURRENCY (USD or CNY): the deployment's defaults per caller (0: none; a
    # token's limits.spend_per_day / spend_per_month win), and prices overriding the table in
    # chat/prices.py (JSON, per million tokens: {"model": {"input", "cached_input", "output"}}).
    currency: str = field(default="USD", metadata=_env("CURRENCY"))
    model_prices: dict[str, Any] = field(default_factory=dict, metadata=_env("MODEL_PRICES"))
    default_spend_per_day: float = field(default=0.0, metadata=_env("DEFAULT_SPEND_PER_DAY"))
    default_spend_per_month: float = field(default=0.0, metadata=_env("DEFAULT_SPEND_PER_MONTH"))
    # Send the upstream request while the quota reservation runs (true), or only once the quota
    # said yes (false: a refused request never reaches Zhipu, and every first token waits one
    # DynamoDB round trip longer). See chat/session.py.
    quota_overlap: bool = field(default=True, metadata=_env("QUOTA_OVERLAP"))
    # Resumable streams: answers recorded in CONVERSATIONS_TABLE (off without one), so that a
    # reconnect gets the rest of its answer; records expire this long after the answer's deadline
    resumable_streams: bool = field(default=True, metadata=_env("RESUMABLE_STREAMS"))
    resumable_ttl_seconds: int = field(default=900, metadata=_env("RESUMABLE_TTL_SECONDS"))
    # How long a response waits after its terminal event for the answer's bookkeeping (its
    # resumable record's end, the quota, the saved turn); the rest runs on in the background.
    bookkeeping_wait_seconds: float = field(default=1.0, metadata=_env("BOOKKEEPING_WAIT_SECONDS"))
    # Observability
    log_content: bool = field(default=False, metadata=_env("LOG_CONTENT"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings: ``overrides`` first, then ``environ`` (default ``os.environ``)."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            if f.name in overrides:
                values[f.name] = overrides.pop(f.name)
                continue
            raw = environ.get(f.metadata["env"])
            if raw is not None and raw.strip() != "":
                values[f.name] = _parse(f.type, raw.strip(), f.metadata["env"])
        if overrides:
            raise TypeError(f"unknown settings: {', '.join(sorted(overrides))}")
        return cls(**values)

    def origin_allowed(self, origin: str | None) -> bool:
        """Whether a browser page at ``origin`` may call (no Origin header: not a browser)."""
        return origin is None or "*" in self.allowed_origins or origin in self.allowed_origins


def _as_bool(raw: str) -> bool:
    lowered = raw.lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ValueError(raw)


def _as_finite(raw: str) -> float:
    """A number; ``inf`` and ``nan`` are refused (a budget of ``inf`` failed every request)."""
    value = float(raw)
    if not math.isfinite(value):
        raise ValueError(raw)
    return value


def _as_tuple(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _as_json_object(raw: str) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        raise ValueError(raw) from None
    if not isinstance(value, dict):
        raise ValueError(raw)
    return value


def _as_aliases(raw: str) -> dict[str, str]:
    """``{"name": "model"}`` as JSON, or ``name=model,prefix*=model``; an empty name or model
    is refused."""
    if raw.startswith("{"):
        pairs = list(_as_json_object(raw).items())
    else:
        pairs = [tuple(item.split("=", 1)) for item in _as_tuple(raw)]  # type: ignore[misc]
    aliases: dict[str, str] = {}
    for pair in pairs:
        if len(pair) != 2:
            raise ValueError(raw)
        name, model = pair
        if not isinstance(model, str) or not name.strip() or not model.strip():
            raise ValueError(raw)
        aliases[name.strip()] = model.strip()
    return aliases


_PARSERS: dict[str, Callable[[str], Any]] = {
    "dict[str, Any]": _as_json_object,
    "dict[str, str] | None": _as_aliases,
    "str": str,
    "int": int,
    "float": _as_finite,
    "bool": _as_bool,
    "tuple[str, ...]": _as_tuple,
}


def _parse(type_name: Any, raw: str, env_name: str) -> Any:
    try:
        return _PARSERS[str(type_name)](raw)
    except ValueError as exc:
        raise ValueError(f"{env_name}: cannot read {raw[:80]!r} as {type_name}") from exc
