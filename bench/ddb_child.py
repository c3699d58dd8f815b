"""One fresh process of ``bench/ddb_clients.py``: import one DynamoDB option, time its calls.

Run as a script (``python bench/ddb_child.py OPTION MODE``) so that nothing of the benchmark is
imported before the option is. What a warm relay process already holds is imported first
(asyncio, json, httpx); then ``MARK`` goes to stderr, and only then the
option's own imports, so ``-X importtime`` lines after the mark are the option's cost alone.

MODE ``import`` stops after the imports. MODE ``calls`` goes on: the first call (client built
from the environment, then the quota store's conditional UpdateItem), then warm rounds of the
operations the stores use, and prints one JSON line of timings.

Environment: ``BENCH_TABLE``, ``BENCH_CONV_PK`` (a partition holding turns to query),
``BENCH_WARM`` (timed rounds), plus the AWS variables a Lambda function has.
"""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

MARK = "@@option-imports-start"
PREBUILT_TLS: ssl.SSLContext | None = None
"""For ``sigv4-shared-tls``: the context the relay's Zhipu transport already built
(``glm_relay.tls``), handed to the DynamoDB transport so that it builds no second one."""
Call = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


class Refused(Exception):
    def __init__(self, item: Any) -> None:
        self.item = item


def import_boto3() -> Callable[[str], Call]:
    import boto3
    from botocore.config import Config

    def build(table: str) -> Call:
        # As the package reached DynamoDB before: one client, each call in a worker thread.
        config = Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"mode": "standard", "max_attempts": 3},
            max_pool_connections=50,
        )
        client = boto3.session.Session().client("dynamodb", config=config)
        names = {
            "UpdateItem": "update_item",
            "GetItem": "get_item",
            "Query": "query",
            "PutItem": "put_item",
        }

        def blocking(op: str, params: dict[str, Any]) -> dict[str, Any]:
            try:
                result: dict[str, Any] = getattr(client, names[op])(TableName=table, **params)
            except client.exceptions.ConditionalCheckFailedException as failed:
                raise Refused(failed.response.get("Item")) from failed
            return result

        async def call(op: str, params: dict[str, Any]) -> dict[str, Any]:
            return await asyncio.to_thread(blocking, op, params)

        return call

    return build


def import_aiodynamo() -> Callable[[str], Call]:
    from aiodynamo.client import Client
    from aiodynamo.credentials import Credentials
    from aiodynamo.errors import ConditionalCheckFailed
    from aiodynamo.http.httpx import HTTPX
    from yarl import URL

    def build(table: str) -> Call:

        http = httpx.AsyncClient(timeout=httpx.Timeout(5.0, connect=2.0))
        client = Client(
            HTTPX(http),
            Credentials.auto(),
            os.environ["AWS_REGION"],
            endpoint=URL(os.environ["AWS_ENDPOINT_URL_DYNAMODB"]),
        )

        async def call(op: str, params: dict[str, Any]) -> dict[str, Any]:
            # The raw wire payload: 26.4's update_item has no ReturnValuesOnConditionCheckFailure.
            try:
                return await client.send_request(action=op, payload={"TableName": table, **params})
            except ConditionalCheckFailed as failed:
                raise Refused(failed.args[0].get("Item")) from failed

        return call

    return build


def import_sigv4(shared_tls: bool = False) -> Callable[[str], Call]:
    from glm_relay.state.dynamo import Table
    from glm_relay.state.dynamo_client import ConditionFailed, DynamoClient

    context = PREBUILT_TLS if shared_tls else None

    def build(table: str) -> Call:
        client = DynamoClient() if context is None else DynamoClient(verify=context)
        signed_table = Table(table, lambda: client)

        async def call(op: str, params: dict[str, Any]) -> dict[str, Any]:
            try:
                return await signed_table.call(op, **params)
            except ConditionFailed as failed:
                raise Refused(failed.item) from failed

        return call

    return build


OPTIONS: dict[str, Callable[[], Callable[[str], Call]]] = {
    "boto3": import_boto3,
    "aiodynamo": import_aiodynamo,
    "sigv4": import_sigv4,
    "sigv4-shared-tls": lambda: import_sigv4(shared_tls=True),
}


def admit_params(key: dict[str, Any], max_requests: int) -> dict[str, Any]:
    """QuotaStore.admit's UpdateItem."""
    return {
        "Key": key,
        "UpdateExpression": "ADD #req :one, #tok :reserve SET #exp = :exp",
        "ConditionExpression": (
            "(attribute_not_exists(#req) OR #req < :maxrequests)"
            " AND (attribute_not_exists(#tok) OR #tok <= :tokenroom)"
        ),
        "ExpressionAttributeNames": {
            "#req": "requests",
            "#tok": "tokens_used",
            "#exp": "expires_at",
        },
        "ExpressionAttributeValues": {
            ":one": {"N": "1"},
            ":reserve": {"N": "100"},
            ":exp": {"N": "1742169600"},
            ":maxrequests": {"N": str(max_requests)},
            ":tokenroom": {"N": "1000000000"},
        },
        "ReturnValues": "ALL_NEW",
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


async def calls(build: Callable[[str], Call]) -> dict[str, Any]:
    table = os.environ["BENCH_TABLE"]
    warm_rounds = int(os.environ.get("BENCH_WARM", "30"))
    quota_key = {"pk": {"S": f"QUOTA#{uuid.uuid4().hex}"}, "sk": {"S": "DAY#2025-03-14"}}
    conv_pk = {"S": os.environ["BENCH_CONV_PK"]}

    started = time.perf_counter()
    call = build(table)
    first = await call("UpdateItem", admit_params(quota_key, 10**9))
    first_ms = (time.perf_counter() - started) * 1000
    assert first["Attributes"]["requests"] == {"N": "1"}, first

    async def refused() -> None:
        try:
            await call("UpdateItem", admit_params(quota_key, 0))
        except Refused as failure:
            assert failure.item is not None and "requests" in failure.item
        else:
            raise AssertionError("the condition should have failed")

    turn = 0

    async def put() -> None:
        nonlocal turn
        turn += 1
        await call(
            "PutItem",
            {
                "Item": {
                    "pk": quota_key["pk"],
                    "sk": {"S": f"TURN#{turn:08d}"},
                    "question": {"S": "q" * 200},
                    "answer": {"S": "a" * 2000},
                    "status": {"S": "complete"},
                }
            },
        )

    async def query() -> None:
        page = await call(
            "Query",
            {
                "KeyConditionExpression": "pk = :pk AND begins_with(sk, :turn)",
                "ExpressionAttributeValues": {":pk": conv_pk, ":turn": {"S": "TURN#"}},
                "ProjectionExpression": "question, answer, #status, expires_at",
                "ExpressionAttributeNames": {"#status": "status"},
                "ScanIndexForward": False,
                "ConsistentRead": True,
                "Limit": 25,
            },
        )
        assert len(page["Items"]) == 5, page

    async def get() -> None:
        result = await call("GetItem", {"Key": quota_key, "ConsistentRead": True})
        assert "Item" in result

    async def update() -> None:
        await call("UpdateItem", admit_params(quota_key, 10**9))

    ops: dict[str, Callable[[], Awaitable[None]]] = {
        "UpdateItem": update,
        "UpdateItem refused": refused,
        "GetItem": get,
        "Query": query,
        "PutItem": put,
    }
    wall: dict[str, list[float]] = {name: [] for name in ops}
    cpu: dict[str, list[float]] = {name: [] for name in ops}
    for round_number in range(3 + warm_rounds):
        for name, op in ops.items():
            w0, c0 = time.perf_counter(), time.process_time()
            await op()
            w1, c1 = time.perf_counter(), time.process_time()
            if round_number >= 3:
                wall[name].append((w1 - w0) * 1000)
                cpu[name].append((c1 - c0) * 1000)
    return {
        "first_ms": first_ms,
        "warm_ms": {name: statistics.median(v) for name, v in wall.items()},
        "warm_cpu_ms": {name: statistics.median(v) for name, v in cpu.items()},
        "rss_mb": peak_rss_mb(),
    }


def peak_rss_mb() -> float:
    """VmHWM: unlike ru_maxrss, it starts afresh at exec, so the parent's size is not in it."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    global PREBUILT_TLS
    option, mode = sys.argv[1], sys.argv[2]
    if option == "sigv4-shared-tls":
        from glm_relay.tls import client_context

        PREBUILT_TLS = client_context(os.environ.get("SSL_CERT_FILE", ""))
    sys.stderr.write(MARK + "\n")
    sys.stderr.flush()
    started = time.perf_counter()
    build = OPTIONS[option]()
    import_ms = (time.perf_counter() - started) * 1000
    result: dict[str, Any] = {"import_wall_ms": import_ms}
    if mode == "calls":
        result.update(asyncio.run(calls(build)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
