"""moto on loopback, holding the relay's secrets and table, as the stack and tests use it.

Example:
    moto = MotoBackend()
    moto.start()
    arn = moto.put_secret("glm-relay/zhipu-api-key", "id.secret")
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
from dataclasses import dataclass
from typing import Any

REGION = "us-east-1"
# moto accepts any credentials; these only keep botocore from looking for real ones.
DUMMY_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_ATOMIC_LOCK = threading.Lock()


def make_item_writes_atomic() -> None:
    """Give moto DynamoDB's guarantee that one conditional write to one item is atomic.

    moto checks a condition and writes in Python without a lock, so concurrent requests could
    both pass the check; serialising each single-item call makes it behave like the service.
    Separate calls (read, then write) still race, as they do against DynamoDB.
    """
    from moto.dynamodb.models import DynamoDBBackend

    for name in ("put_item", "update_item", "delete_item"):
        method = getattr(DynamoDBBackend, name)
        if getattr(method, "_serialised", False):
            continue

        def locked(*args: Any, _method: Any = method, **kwargs: Any) -> Any:
            with _ATOMIC_LOCK:
                return _method(*args, **kwargs)

        locked._serialised = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, functools.wraps(method)(locked))


@dataclass
class MotoBackend:
    """A moto server holding the relay's secrets and table."""

    port: int = 0
    server: Any = None

    def start(self) -> str:
        from moto.server import ThreadedMotoServer

        make_item_writes_atomic()
        # One access line per AWS call would drown the relay's own request lines.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.port = self.port or free_port()
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        return self.endpoint

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(  # type: ignore[call-overload]
            service,
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def put_secret(self, name: str, value: str) -> str:
        """Create or update a secret; returns its ARN."""
        sm = self.client("secretsmanager")
        try:
            return str(sm.create_secret(Name=name, SecretString=value)["ARN"])
        except sm.exceptions.ResourceExistsException:
            return str(sm.put_secret_value(SecretId=name, SecretString=value)["ARN"])

    def create_table(self, name: str) -> None:
        """The conversations/quotas table, shaped as in template.yaml."""
        ddb = self.client("dynamodb")
        with contextlib.suppress(ddb.exceptions.ResourceInUseException):
            create_relay_table(ddb, name)

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()


def create_relay_table(ddb: Any, name: str) -> None:
    """Create the relay's table with a boto3 DynamoDB client: keys as in template.yaml."""
    ddb.create_table(
        TableName=name,
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )
