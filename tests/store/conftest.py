"""A real moto server on loopback and a fresh table per test, created the way the template does.

The stores reach moto through the relay's own DynamoDB client (httpx + SigV4); boto3 is used only
to create tables and to look at items from outside. Credentials are moto's dummies, passed as the
environment the client reads (in Lambda: the execution role's variables).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config

from devtools.moto_backend import create_relay_table
from devtools.stack import MotoBackend
from glm_relay.state.dynamo_client import DynamoClient

from .fakes import FakeClock

REGION = "us-east-1"


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto in a thread, each single-item write made atomic as DynamoDB's are (see
    ``devtools.moto_backend.make_item_writes_atomic``): two separate calls (read, then write)
    still race, which is what the concurrency tests are about."""
    moto = MotoBackend()
    try:
        yield moto.start()
    finally:
        moto.stop()


@pytest.fixture(scope="session")
def aws_env(moto_endpoint: str) -> dict[str, str]:
    """What the relay's client reads from the environment, pointing at moto."""
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
    }


@pytest.fixture
def client_factory(aws_env: dict[str, str]) -> Callable[[], DynamoClient]:
    """Builds the relay's client against moto (one per call; each event loop needs its own pool)."""

    def factory() -> DynamoClient:
        return DynamoClient(env=aws_env, max_connections=64)

    return factory


@pytest.fixture(scope="session")
def dynamo(moto_endpoint: str) -> Any:
    """A boto3 client for tests to create tables and look at items from outside."""
    return boto3.session.Session().client(
        "dynamodb",
        endpoint_url=moto_endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(max_pool_connections=64),
    )


@pytest.fixture
def table_name(dynamo: Any) -> Iterator[str]:
    name = f"conversations-{uuid.uuid4().hex[:12]}"
    create_relay_table(dynamo, name)
    dynamo.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"AttributeName": "expires_at", "Enabled": True},
    )
    yield name
    dynamo.delete_table(TableName=name)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2025, 3, 14, 15, 9, 26, tzinfo=UTC))
