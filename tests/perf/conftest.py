"""Fixtures of the secrets-extension tests: the stand-in serving from the session's moto."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from devtools.secrets_extension_standin import SecretsExtensionStandIn, running_standin
from devtools.stack import DevStack

TOKEN = "testing"  # the AWS_SESSION_TOKEN devtools.stack puts in the environment


@pytest.fixture
def standin(stack: DevStack) -> Iterator[SecretsExtensionStandIn]:
    """A stand-in reading the session stack's moto, caching as the real extension does."""
    with running_standin(token=TOKEN, client=stack.moto.client("secretsmanager")) as server:
        yield server


@pytest.fixture
def secret(stack: DevStack) -> tuple[str, str]:
    """A fresh secret in moto: (ARN, value)."""
    value = f"perfid.{uuid.uuid4().hex}"
    arn = stack.moto.put_secret(f"glm-relay/perf/key-{uuid.uuid4().hex[:8]}", value)
    return arn, value
