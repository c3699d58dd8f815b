"""DynamoDB over the relay's own httpx, signed by ``aws-sdk-signers``: no botocore on the path.

DynamoDB speaks one JSON protocol: every operation is ``POST /`` with
``X-Amz-Target: DynamoDB_20120810.<Operation>``, ``Content-Type: application/x-amz-json-1.0`` and
the request as the JSON body, in exactly the wire shape the stores build (``{"pk": {"S": "..."}}``).
So the stores' parameters pass through unchanged; this module adds the SigV4 signature (from AWS's
standalone signer, nothing hand-made), the endpoint, credentials, retries and error mapping.
Importing boto3 and building its client cost about 240 ms of a cold start; this costs about 5 ms
(``bench/ddb_clients.py`` measures both).

Configuration comes from the environment, as Lambda and botocore define it:

- credentials: ``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN`` (Lambda sets
  them from the execution role; locally and in tests they are moto's dummies). Read on every call,
  so changed values are picked up without rebuilding anything;
- region: ``AWS_REGION``, else ``AWS_DEFAULT_REGION``;
- endpoint: ``AWS_ENDPOINT_URL_DYNAMODB``, else ``AWS_ENDPOINT_URL`` (moto locally), unless
  ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true; else ``https://dynamodb.<region>.amazonaws.com``.

Errors: a refused condition raises :class:`ConditionFailed`, carrying the stored item when the
request asked for it (``ReturnValuesOnConditionCheckFailure="ALL_OLD"``). Throttling, 5xx and
connections that could not be opened are retried with jittered backoff (``max_attempts`` in all,
botocore's "standard" count); what still fails raises :class:`Throttled`, :class:`DynamoError` or
:class:`DynamoUnavailable`. A read that timed out is not retried: an ``ADD`` may have been applied.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import random
import ssl
import zlib
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
from aws_sdk_signers import (
    URI,
    AWSCredentialIdentity,
    AWSRequest,
    Field,
    Fields,
    SigV4Signer,
    SigV4SigningProperties,
)

from glm_relay.http_pool import PooledTransport
from glm_relay.tls import client_context

Item = dict[str, dict[str, Any]]
"""An item in the low-level wire shape: ``{"name": {"S": "value"}}``."""

SERVICE = "dynamodb"
TARGET_PREFIX = "DynamoDB_20120810."
CONTENT_TYPE = "application/x-amz-json-1.0"
CONDITION_FAILED = "ConditionalCheckFailedException"
THROTTLING = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
    }
)
"""Error codes that mean "not done, try again", as botocore's standard retry mode treats them."""
TRANSIENT_STATUS = frozenset({500, 502, 503, 504})

# The operation names the stores use (boto3's) and their wire names.
OPERATIONS = {
    "get_item": "GetItem",
    "put_item": "PutItem",
    "update_item": "UpdateItem",
    "delete_item": "DeleteItem",
    "query": "Query",
}


class DynamoError(Exception):
    """DynamoDB answered with an error: ``code`` is the bare exception name from ``__type``."""

    def __init__(self, code: str, message: str, status: int, body: Mapping[str, Any]) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.status = status
        self.body = body

    @property
    def retryable(self) -> bool:
        return self.code in THROTTLING or self.status in TRANSIENT_STATUS


class ConditionFailed(DynamoError):
    """A conditional write was refused; ``item`` is the stored item when DynamoDB returned it."""

    @property
    def item(self) -> Item | None:
        item = self.body.get("Item")
        return item if isinstance(item, dict) else None


class Throttled(DynamoError):
    """Still throttled after every attempt."""


class DynamoUnavailable(Exception):
    """No answer: the connection failed, timed out, or the answer arrived damaged."""


class NoCredentials(Exception):
    """``AWS_ACCESS_KEY_ID`` or ``AWS_SECRET_ACCESS_KEY`` is not set."""


def region_from(env: Mapping[str, str]) -> str:
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if not region:
        raise ValueError("AWS_REGION (or AWS_DEFAULT_REGION) is not set")
    return region


def endpoint_from(env: Mapping[str, str], region: str) -> str:
    """The service URL: the configured override (moto), else the regional endpoint."""
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        url = env.get("AWS_ENDPOINT_URL_DYNAMODB") or env.get("AWS_ENDPOINT_URL")
        if url:
            return url
    suffix = "amazonaws.com.cn" if region.startswith("cn-") else "amazonaws.com"
    return f"https://{SERVICE}.{region}.{suffix}"


class DynamoClient:
    """One signed ``post(operation, payload)`` over a pooled httpx transport.

    The transport is the container's kind of connection pool (``glm_relay.http_pool``) used
    directly, as the Zhipu client uses it: the client layer above it does nothing for one fixed
    POST. ``verify`` takes the container's shared ``ssl.SSLContext`` (``glm_relay.tls``; the
    system's authorities when omitted), so the CA bundle is loaded once, not once per client.
    Nothing is connected until the first call.
    """

    def __init__(
        self,
        *,
        env: Mapping[str, str] | None = None,
        region: str | None = None,
        endpoint: str | None = None,
        verify: ssl.SSLContext | None = None,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        max_attempts: int = 3,
        max_connections: int = 50,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._env = os.environ if env is None else env
        self.region = region or region_from(self._env)
        self.endpoint = endpoint or endpoint_from(self._env, self.region)
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"endpoint must be an http(s) URL, not {self.endpoint!r}")
        self._uri = URI(
            scheme=parts.scheme, host=parts.hostname, port=parts.port, path=parts.path or "/"
        )
        self._url = self._uri.build()
        self._properties: SigV4SigningProperties = {"region": self.region, "service": SERVICE}
        self._signer = SigV4Signer()
        self._identity_key: tuple[str, str, str | None] | None = None
        self._identity: AWSCredentialIdentity | None = None
        self._timeout = httpx.Timeout(
            connect=connect_timeout, read=read_timeout, write=read_timeout, pool=connect_timeout
        ).as_dict()
        self._max_attempts = max_attempts
        self._transport = transport or PooledTransport(
            verify or client_context(), max_connections=max_connections
        )

    async def aclose(self) -> None:
        await self._transport.aclose()

    def identity(self) -> AWSCredentialIdentity:
        """The credentials in the environment now (rebuilt only when they changed)."""
        access_key = self._env.get("AWS_ACCESS_KEY_ID")
        secret_key = self._env.get("AWS_SECRET_ACCESS_KEY")
        if not access_key or not secret_key:
            raise NoCredentials("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set")
        key = (access_key, secret_key, self._env.get("AWS_SESSION_TOKEN") or None)
        if key != self._identity_key or self._identity is None:
            self._identity = AWSCredentialIdentity(
                access_key_id=key[0], secret_access_key=key[1], session_token=key[2]
            )
            self._identity_key = key
        return self._identity

    def sign(
        self, operation: str, body: bytes, *, date: str | None = None
    ) -> list[tuple[str, str]]:
        """The headers that carry ``body`` to ``operation``, signature included.

        ``date`` (``YYYYMMDDTHHMMSSZ``) is for tests; normally the signer uses the current time.
        """
        request = AWSRequest(
            destination=self._uri,
            method="POST",
            body=io.BytesIO(body),
            fields=Fields(
                [
                    Field(name="Content-Type", values=[CONTENT_TYPE]),
                    Field(name="X-Amz-Target", values=[TARGET_PREFIX + operation]),
                ]
            ),
        )
        properties = self._properties
        if date is not None:
            properties = {**properties, "date": date}
        signed = self._signer.sign(request=request, identity=self.identity(), properties=properties)
        return [(field.name, field.as_string()) for field in signed.fields]

    async def post(self, operation: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Send one operation (``"UpdateItem"``) and return its decoded answer.

        Raises :class:`ConditionFailed`, :class:`Throttled`, :class:`DynamoError`,
        :class:`DynamoUnavailable` or :class:`NoCredentials`.
        """
        body = json.dumps(payload, separators=(",", ":")).encode()
        attempt = 0
        while True:
            attempt += 1
            headers = self.sign(operation, body)  # afresh each attempt: the date is signed
            headers.append(("Accept-Encoding", "identity"))  # x-amz-crc32 covers the raw body
            failure: Exception
            try:
                status, response_headers, data = await self._send(body, headers)
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                failure = DynamoUnavailable(f"cannot reach DynamoDB: {exc!r}")
                failure.__cause__ = exc
            except httpx.TimeoutException as exc:
                raise DynamoUnavailable(f"DynamoDB did not answer in time: {exc!r}") from exc
            except httpx.TransportError as exc:
                raise DynamoUnavailable(f"the connection to DynamoDB broke: {exc!r}") from exc
            else:
                expected = response_headers.get("x-amz-crc32")
                if expected is not None and int(expected) != zlib.crc32(data):
                    failure = DynamoUnavailable("the answer's CRC32 does not match its body")
                elif status == 200:
                    result: dict[str, Any] = json.loads(data)
                    return result
                else:
                    error = _error_of(status, data)
                    if not error.retryable:
                        raise error
                    failure = error
            if attempt >= self._max_attempts:
                raise failure
            await asyncio.sleep(_backoff(attempt))

    async def _send(
        self, body: bytes, headers: list[tuple[str, str]]
    ) -> tuple[int, httpx.Headers, bytes]:
        request = httpx.Request(
            "POST", self._url, content=body, headers=headers, extensions={"timeout": self._timeout}
        )
        response = await self._transport.handle_async_request(request)
        try:
            data = await response.aread()
        finally:
            await response.aclose()
        return response.status_code, response.headers, data


def _error_of(status: int, data: bytes) -> DynamoError:
    try:
        body = json.loads(data)
        if not isinstance(body, dict):
            raise ValueError
    except ValueError:
        body = {}
    code = str(body.get("__type") or f"HTTP{status}").rsplit("#", 1)[-1]
    message = str(body.get("message") or body.get("Message") or "")
    if code == CONDITION_FAILED:
        return ConditionFailed(code, message, status, body)
    if code in THROTTLING:
        return Throttled(code, message, status, body)
    return DynamoError(code, message, status, body)


def _backoff(attempt: int) -> float:
    """Full jitter over 50 ms, 100 ms, 200 ms... capped at 1 s."""
    return random.uniform(0, min(1.0, 0.05 * 2 ** (attempt - 1)))
