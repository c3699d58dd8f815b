"""Secrets from the AWS Parameters and Secrets Lambda Extension: no SDK on the request path.

The extension (an AWS-published layer, see ``template.yaml``) runs beside the function and serves
``GET http://localhost:{port}/secretsmanager/get?secretId={id}`` with the JSON of
``GetSecretValue``, authenticated by the header ``X-Aws-Parameters-Secrets-Token:
$AWS_SESSION_TOKEN``; ``port`` is ``$PARAMETERS_SECRETS_EXTENSION_HTTP_PORT`` (default 2773). It
caches each secret itself (``SECRETS_MANAGER_TTL``, at most 300 s) and does the Secrets Manager
call with its own client, so the function never imports boto3 for a secret: the README's
performance section has the measured difference (``make bench``, "secret read").

The request is one plain HTTP/1.1 GET on a raw asyncio connection, answered with
``glm_relay.http1.whole.read_response`` (already imported by the runtime loop): no thread, no new
module, which measured faster at cold start than ``http.client`` or a new httpx client.

``force`` skips this object's own cache. The extension has no documented way to skip *its*
cache, so a forced read (after the upstream rejected the key: it may have been rotated) goes to
``fallback`` when one is given, normally the SDK source; without one it asks the extension again.

Example:
    source = ExtensionSecretSource("zhipu/api-key", max_age_seconds=900)
    key = await source.fetch()
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Mapping
from urllib.parse import quote

from glm_relay.errors import ErrorCode, RelayError
from glm_relay.http1 import request_head
from glm_relay.http1.whole import read_response
from glm_relay.secrets.cached import CachedSecretSource, SecretSource

PORT_ENV = "PARAMETERS_SECRETS_EXTENSION_HTTP_PORT"
DEFAULT_PORT = 2773
DEFAULT_HOST = "localhost"
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
TOKEN_ENV = "AWS_SESSION_TOKEN"
GET_PATH = "/secretsmanager/get"
# Where Lambda puts the extension's executable when the layer is attached.
EXTENSION_EXECUTABLE = "/opt/extensions/AWSParametersAndSecretsLambdaExtension"
DEFAULT_TIMEOUT_SECONDS = 5.0


def extension_available(
    environ: Mapping[str, str] | None = None,
    *,
    exists: Callable[[str], bool] = os.path.exists,
) -> bool:
    """Whether the extension is there: its port variable is set, or its layer is attached."""
    environ = os.environ if environ is None else environ
    return bool(environ.get(PORT_ENV, "").strip()) or exists(EXTENSION_EXECUTABLE)


class ExtensionSecretSource(CachedSecretSource):
    """A ``SecretSource`` that asks the Parameters and Secrets Lambda Extension.

    The value is also kept in this object for ``max_age_seconds``, so a warm request (the access
    token check reads its key on every request) costs no local round trip.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        max_age_seconds: int,
        fallback: SecretSource | None = None,
        environ: Mapping[str, str] | None = None,
        host: str = DEFAULT_HOST,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(secret_id, max_age_seconds=max_age_seconds, clock=clock)
        environ = os.environ if environ is None else environ
        self.fallback = fallback
        self.host = host
        self.port = int(environ.get(PORT_ENV, "").strip() or DEFAULT_PORT)
        self.timeout_seconds = timeout_seconds
        self._environ = environ
        self.requests = 0  # reads that reached the extension

    async def _read(self, force: bool) -> str:
        if force and self.fallback is not None:
            return await self.fallback.fetch(force=True)
        return await self._get()

    async def _get(self) -> str:
        target = f"{GET_PATH}?secretId={quote(self.secret_id, safe='')}"
        token = self._environ.get(TOKEN_ENV, "")
        self.requests += 1
        writer: asyncio.StreamWriter | None = None
        try:
            head = request_head(  # ValueError for a token holding a line break
                b"GET",
                target.encode("latin-1"),
                [
                    (b"Host", f"{self.host}:{self.port}".encode("latin-1")),
                    (TOKEN_HEADER.encode("latin-1"), token.encode("latin-1")),
                    (b"Connection", b"close"),
                ],
            )
            async with asyncio.timeout(self.timeout_seconds):
                reader, writer = await asyncio.open_connection(self.host, self.port)
                writer.write(head)
                response = await read_response(reader)
        except (OSError, TimeoutError, EOFError, asyncio.LimitOverrunError, ValueError):
            raise RelayError(
                ErrorCode.INTERNAL_ERROR, "the secrets extension did not answer"
            ) from None
        finally:
            if writer is not None:
                writer.close()
        if response.status != 200:
            # 4xx: the secret is missing or not ours to read; the body may name it, so not shown.
            code = (
                ErrorCode.CONFIGURATION_ERROR
                if 400 <= response.status < 500
                else ErrorCode.INTERNAL_ERROR
            )
            raise RelayError(code, f"the secrets extension refused the secret ({response.status})")
        try:
            value = json.loads(response.body)["SecretString"]
        except (ValueError, KeyError, TypeError):
            raise RelayError(
                ErrorCode.CONFIGURATION_ERROR, "the secret has no SecretString"
            ) from None
        if not isinstance(value, str):
            raise RelayError(ErrorCode.CONFIGURATION_ERROR, "the secret has no SecretString")
        return value
