"""Where the relay's secrets come from: the secrets extension, or the SDK.

Example:
    source = secret_source("zhipu/api-key", source="auto", max_age_seconds=900)
    key = await source.fetch()
"""

from __future__ import annotations

from collections.abc import Mapping

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.secrets.cached import CachedSecretSource, SecretSource
from glm_relay.secrets.extension import ExtensionSecretSource, extension_available
from glm_relay.secrets.sdk import PowertoolsSecretSource

__all__ = [
    "SECRETS_SOURCES",
    "CachedSecretSource",
    "ExtensionSecretSource",
    "PowertoolsSecretSource",
    "SecretSource",
    "extension_available",
    "secret_source",
]

SECRETS_SOURCES = ("auto", "extension", "sdk")


def secret_source(
    secret_id: str,
    *,
    source: str = "auto",
    max_age_seconds: int,
    environ: Mapping[str, str] | None = None,
) -> SecretSource:
    """The source ``SECRETS_SOURCE`` names for ``secret_id``.

    ``extension``: the Parameters and Secrets Lambda Extension (no SDK; a forced read after a key
    rotation still goes through the SDK, since the extension's own cache cannot be skipped).
    ``sdk``: Powertools and boto3. ``auto``: the extension when its layer or port variable is
    present, else the SDK.
    """
    if source not in SECRETS_SOURCES:
        raise RelayError(
            ErrorCode.CONFIGURATION_ERROR, "SECRETS_SOURCE must be 'auto', 'extension' or 'sdk'"
        )
    sdk = PowertoolsSecretSource(secret_id, max_age_seconds=max_age_seconds)
    if source == "sdk" or (source == "auto" and not extension_available(environ)):
        return sdk
    return ExtensionSecretSource(
        secret_id, max_age_seconds=max_age_seconds, fallback=sdk, environ=environ
    )
