"""Secrets Manager through Powertools' cached ``get_secret`` (boto3 under the hood)."""

from __future__ import annotations

import asyncio

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.secrets.cached import CachedSecretSource


class PowertoolsSecretSource(CachedSecretSource):
    """Reads a secret with the SDK.

    Powertools is imported on first use, not at module import, so a cold start that serves the
    demo page or rejects a bad request never pays for boto3.
    """

    async def _read(self, force: bool) -> str:
        return await asyncio.to_thread(self._read_blocking, force)

    def _read_blocking(self, force: bool) -> str:
        from aws_lambda_powertools.utilities import parameters

        try:
            value = parameters.get_secret(
                self.secret_id, max_age=int(self.max_age_seconds), force_fetch=force
            )
        except Exception as exc:
            # Only the error's type: its message may name the secret's ARN.
            raise RelayError(
                ErrorCode.SECRET_UNAVAILABLE,
                f"the secret could not be read ({type(exc).__name__})",
            ) from None
        if isinstance(value, bytes):
            return value.decode()
        return str(value)
