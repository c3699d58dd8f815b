"""How the stores reach DynamoDB: no boto3 at all, one client, endpoint from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from glm_relay.state import ConversationStore, QuotaLimits, QuotaStore

RELAY = Path(__file__).resolve().parents[2] / "functions" / "relay"


def run_python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, "PYTHONPATH": str(RELAY), **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_stores_never_import_boto3() -> None:
    result = run_python(
        """
        import sys
        import glm_relay.state
        import glm_relay.state.conversations
        import glm_relay.state.dynamo
        import glm_relay.state.quotas
        from glm_relay.state import ConversationStore, QuotaStore
        ConversationStore("table")
        QuotaStore("table")
        import glm_relay.state.dynamo_client
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"boto3", "botocore"})
        assert not loaded, loaded
        """
    )
    assert result.returncode == 0, result.stderr


def test_the_default_client_is_shared_and_uses_the_dynamodb_endpoint_variable(
    moto_endpoint: str, table_name: str
) -> None:
    result = run_python(
        f"""
        import asyncio
        from glm_relay.state import ConversationStore, QuotaLimits, QuotaStore
        from glm_relay.state.dynamo import default_client

        async def main():
            conversations = ConversationStore({table_name!r})
            quotas = QuotaStore({table_name!r})
            cid = await conversations.create("someone")
            await conversations.history(cid, "someone")
            assert (await quotas.admit("someone", QuotaLimits(1, 10), reserve_tokens=1)).allowed
            assert conversations._table.client() is quotas._table.client() is default_client()
            assert default_client().endpoint == {moto_endpoint!r}
            assert default_client().region == "us-east-1"
            import sys
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in {{"boto3", "botocore"}})
            assert not loaded, loaded

        asyncio.run(main())
        """,
        env={
            "AWS_ENDPOINT_URL_DYNAMODB": moto_endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        },
    )
    assert result.returncode == 0, result.stderr


async def test_a_store_builds_its_client_once(client_factory: Any, table_name: str) -> None:
    calls = 0

    def counting_factory() -> Any:
        nonlocal calls
        calls += 1
        return client_factory()

    conversations = ConversationStore(table_name, client_factory=counting_factory)
    cid = await conversations.create("someone")
    await conversations.load_for_prompt(cid, "someone", budget_chars=100)
    await conversations.history(cid, "someone")
    quotas = QuotaStore(table_name, client_factory=counting_factory)
    await quotas.admit("someone", QuotaLimits(5, 100), reserve_tokens=1)
    await quotas.usage("someone")
    assert calls == 2  # one per store, not one per call
