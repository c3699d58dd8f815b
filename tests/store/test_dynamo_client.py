"""The relay's DynamoDB client (httpx + aws-sdk-signers) against moto, botocore's signer and fakes.

moto does not check signatures, so the signature itself is compared with botocore's for the same
request at the same instant.
"""

from __future__ import annotations

import json
import ssl
import threading
import zlib
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from glm_relay.state import dynamo_client as ddb
from glm_relay.state.dynamo import Table
from glm_relay.state.dynamo_client import (
    ConditionFailed,
    DynamoClient,
    DynamoUnavailable,
    Throttled,
)
from glm_relay.tls import client_context

REGION = "us-east-1"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "session-token",
}


@pytest.fixture
async def table(aws_env: dict[str, str], table_name: str) -> AsyncIterator[Table]:
    client = DynamoClient(env=aws_env)
    yield Table(table_name, lambda: client)
    await client.aclose()


def quota_key(sub: str = "alice", day: str = "2025-03-14") -> dict[str, Any]:
    return {"pk": {"S": f"QUOTA#{sub}"}, "sk": {"S": f"DAY#{day}"}}


async def admit(table: Table, *, max_requests: int, **extra: Any) -> dict[str, Any]:
    """The quota store's admission update, parameter for parameter."""
    return await table.call(
        "update_item",
        Key=quota_key(),
        UpdateExpression="ADD #req :one, #tok :reserve SET #exp = :exp",
        ConditionExpression="attribute_not_exists(#req) OR #req < :maxrequests",
        ExpressionAttributeNames={"#req": "requests", "#tok": "tokens_used", "#exp": "expires_at"},
        ExpressionAttributeValues={
            ":one": {"N": "1"},
            ":reserve": {"N": "100"},
            ":exp": {"N": "1742169600"},
            ":maxrequests": {"N": str(max_requests)},
        },
        ReturnValues="ALL_NEW",
        **extra,
    )


async def test_a_refused_condition_carries_the_stored_item_only_when_asked(table: Table) -> None:
    first = await admit(table, max_requests=1)
    assert first["Attributes"]["requests"] == {"N": "1"}

    with pytest.raises(ConditionFailed) as refused:
        await admit(table, max_requests=1, ReturnValuesOnConditionCheckFailure="ALL_OLD")
    assert refused.value.item is not None
    assert refused.value.item["requests"] == {"N": "1"}
    assert refused.value.status == 400

    with pytest.raises(ConditionFailed) as bare:
        await admit(table, max_requests=1)
    assert bare.value.item is None


def test_the_signature_is_botocores(monkeypatch: pytest.MonkeyPatch) -> None:
    """Same request, same instant: the Authorization header botocore would send."""
    import botocore.auth
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    when = datetime(2025, 3, 14, 15, 9, 26)
    client = DynamoClient(env={**CREDENTIALS, "AWS_REGION": "eu-west-1"})
    body = json.dumps({"TableName": "t", "Key": quota_key()}, separators=(",", ":")).encode()

    ours = dict(client.sign("GetItem", body, date=when.strftime("%Y%m%dT%H%M%SZ")))

    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when)
    theirs = AWSRequest(
        method="POST",
        url="https://dynamodb.eu-west-1.amazonaws.com/",
        data=body,
        headers={"Content-Type": ddb.CONTENT_TYPE, "X-Amz-Target": "DynamoDB_20120810.GetItem"},
    )
    SigV4Auth(
        Credentials(
            CREDENTIALS["AWS_ACCESS_KEY_ID"],
            CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            CREDENTIALS["AWS_SESSION_TOKEN"],
        ),
        "dynamodb",
        "eu-west-1",
    ).add_auth(theirs)

    assert ours["Authorization"] == theirs.headers["Authorization"]
    assert ours["X-Amz-Security-Token"] == CREDENTIALS["AWS_SESSION_TOKEN"]
    assert client.endpoint == "https://dynamodb.eu-west-1.amazonaws.com"


def _answers(*responses: tuple[int, dict[str, Any]]) -> tuple[httpx.MockTransport, list[str]]:
    targets: list[str] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        targets.append(request.headers["X-Amz-Target"])
        status, body = queue.pop(0)
        return httpx.Response(status, json=body)

    return httpx.MockTransport(handler), targets


THROTTLED = (
    400,
    {
        "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
        "message": "slow down",
    },
)


async def test_throttling_and_5xx_are_retried_then_reported(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ddb, "_backoff", lambda attempt: 0.0)
    env = {**CREDENTIALS, "AWS_REGION": REGION}

    def table(transport: httpx.MockTransport) -> Table:
        client = DynamoClient(env=env, transport=transport)
        return Table("t", lambda: client)

    transport, targets = _answers(THROTTLED, (500, {}), (200, {"Item": quota_key()}))
    assert (await table(transport).call("get_item", Key=quota_key()))["Item"] == quota_key()
    assert targets == ["DynamoDB_20120810.GetItem"] * 3

    transport, targets = _answers(THROTTLED, THROTTLED, THROTTLED)
    with pytest.raises(Throttled) as throttled:
        await table(transport).call("get_item", Key=quota_key())
    assert throttled.value.code == "ProvisionedThroughputExceededException"
    assert len(targets) == 3

    transport, targets = _answers((400, {"__type": "x#ValidationException", "message": "bad"}))
    with pytest.raises(ddb.DynamoError) as invalid:
        await table(transport).call("get_item", Key=quota_key())
    assert (invalid.value.code, invalid.value.message) == ("ValidationException", "bad")
    assert len(targets) == 1


async def test_a_body_that_fails_its_crc32_is_not_trusted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ddb, "_backoff", lambda attempt: 0.0)
    body = json.dumps({"Item": quota_key()}).encode()
    sent: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(1)
        crc = zlib.crc32(body) + (1 if len(sent) == 1 else 0)
        return httpx.Response(200, content=body, headers={"x-amz-crc32": str(crc)})

    client = DynamoClient(
        env={**CREDENTIALS, "AWS_REGION": REGION}, transport=httpx.MockTransport(handler)
    )
    assert (await Table("t", lambda: client).call("get_item", Key=quota_key()))[
        "Item"
    ] == quota_key()
    assert len(sent) == 2


def test_endpoint_region_and_credentials_come_from_the_environment() -> None:
    assert ddb.endpoint_from({"AWS_ENDPOINT_URL": "http://a:1"}, REGION) == "http://a:1"
    both = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://b:2"}
    assert ddb.endpoint_from(both, REGION) == "http://b:2"
    ignored = {"AWS_ENDPOINT_URL": "http://a:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    assert (
        ddb.endpoint_from(ignored, "cn-north-1") == "https://dynamodb.cn-north-1.amazonaws.com.cn"
    )
    assert ddb.region_from({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "x"}) == "eu-west-1"
    assert ddb.region_from({"AWS_DEFAULT_REGION": "ap-south-1"}) == "ap-south-1"
    with pytest.raises(ddb.NoCredentials):
        DynamoClient(env={"AWS_REGION": REGION}).identity()
    env = {**CREDENTIALS, "AWS_REGION": REGION}
    client = DynamoClient(env=env)
    first = client.identity()
    assert client.identity() is first
    env["AWS_SESSION_TOKEN"] = "rotated"
    assert client.identity().session_token == "rotated"


@pytest.fixture(scope="module")
def tls_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """moto over HTTPS with a certificate from a throwaway trustme CA: (endpoint, CA file)."""
    import trustme
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    ca_file = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = make_server(
        "127.0.0.1",
        0,
        DomainDispatcherApplication(create_backend_app),
        threaded=True,
        request_handler=MotoRequestHandler,
        ssl_context=server_context,
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_port}", ca_file
    finally:
        server.shutdown()
        thread.join(5)


async def test_https_trusts_the_shared_context_and_nothing_else(
    tls_moto: tuple[str, Path],
) -> None:
    endpoint, ca_file = tls_moto
    env = {**CREDENTIALS, "AWS_REGION": REGION, "AWS_ENDPOINT_URL_DYNAMODB": endpoint}
    missing = {"TableName": "absent", "Key": quota_key()}

    trusted = DynamoClient(env=env, verify=client_context(str(ca_file)))
    with pytest.raises(ddb.DynamoError) as answered:  # the TLS session works; the table is absent
        await trusted.post("GetItem", missing)
    assert answered.value.code == "ResourceNotFoundException"
    await trusted.aclose()

    untrusted = DynamoClient(env=env, verify=client_context(), max_attempts=1)
    with pytest.raises(DynamoUnavailable) as refused:
        await untrusted.post("GetItem", missing)
    assert "CERTIFICATE_VERIFY_FAILED" in repr(refused.value.__cause__)
    await untrusted.aclose()


async def test_throttling_that_outlasts_the_retries_is_state_unavailable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from glm_relay.access import AccessClaims, TokenLimits
    from glm_relay.chat.request import ChatRequest
    from glm_relay.config import Settings
    from glm_relay.errors import ErrorCode, RelayError
    from glm_relay.state import QuotaStore, UserState

    monkeypatch.setattr(ddb, "_backoff", lambda attempt: 0.0)
    transport, targets = _answers(THROTTLED, THROTTLED, THROTTLED)
    client = DynamoClient(env={**CREDENTIALS, "AWS_REGION": REGION}, transport=transport)
    state = UserState(Settings.from_env({}, conversations_table="t"))
    state._quotas = QuotaStore("t", client_factory=lambda: client)
    claims = AccessClaims(sub="alice", expires_at=2**40, limits=TokenLimits())
    chat = ChatRequest(
        model="glm-4-flash", messages=[{"role": "user", "content": "hi"}], max_tokens=10
    )

    with pytest.raises(RelayError) as refused:
        await state.admit(claims, chat)
    assert refused.value.code is ErrorCode.STATE_UNAVAILABLE
    # Three tries, then one conditional release in case a try landed unseen (it changes nothing
    # unless the reservation is there).
    assert len(targets) == 4
