"""``python -m glm_relay usage`` against moto: usage per user and model over a date range, as
a table or CSV, from the items the relay wrote."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from glm_relay.cli import main
from glm_relay.state.spend import SpendStore, UsageCounts

from .fakes import FakeClock


@pytest.fixture
async def written(table_name: str, client_factory: Callable[[], Any], clock: FakeClock) -> str:
    store = SpendStore(table_name, clock=clock, client_factory=client_factory)
    for day, sub, model, counts in [
        (1, "alice", "glm-4.7", UsageCounts(1, 100, 20, 50, 150_000)),
        (2, "alice", "glm-4.7", UsageCounts(2, 10, 0, 5, 20_000)),
        (2, "alice", "glm-5", UsageCounts(1, 7, 0, 3, 1_000_000_000)),
        (2, "bob", "glm-4.7", UsageCounts(1, 1, 0, 1, 3_000)),
        (5, "bob", "glm-4.7", UsageCounts(9, 9, 9, 9, 9)),  # after the range
    ]:
        clock.set(datetime(2026, 3, day, 12, tzinfo=UTC))
        await store.record(sub, model, counts)
    return table_name


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch, aws_env: dict[str, str]) -> None:
    for name, value in aws_env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", aws_env["AWS_REGION"])


def run(
    capsys: pytest.CaptureFixture[str], *args: str, env: dict[str, str] | None = None
) -> tuple[int, str]:
    code = main(["usage", *args], env or {})
    captured = capsys.readouterr()
    assert captured.err == ""
    return code, captured.out


def test_csv_sums_each_user_and_model_over_the_range(
    written: str, aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(
        capsys, "--table", written, "--from", "2026-03-01", "--to", "2026-03-04", "--format", "csv"
    )

    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert [(r["user"], r["model"], r["requests"], r["cost"]) for r in rows] == [
        ("alice", "glm-4.7", "3", "0.00017"),
        ("alice", "glm-5", "1", "1"),
        ("bob", "glm-4.7", "1", "0.000003"),  # once 3e-06
        ("total", "", "5", "1.000173"),
    ]
    assert rows[0]["input_tokens"] == "110" and rows[0]["cached_tokens"] == "20"
    assert {r["currency"] for r in rows} == {"USD"}  # CURRENCY unset: the default


def test_a_table_for_one_user(written: str, aws: None, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(
        capsys, "--table", written, "--from", "2026-03-02", "--to", "2026-03-31", "--user", "bob"
    )

    assert code == 0
    header, *lines = out.splitlines()
    assert header.split() == [
        "user",
        "model",
        "requests",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
        "cost",
        "currency",
    ]
    assert [line.split()[:3] for line in lines] == [["bob", "glm-4.7", "10"]]


def test_the_cost_column_names_the_deployments_currency(
    written: str, aws: None, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("--table", written, "--from", "2026-03-01", "--to", "2026-03-04", "--format", "csv")
    _, from_env = run(capsys, *args, env={"CURRENCY": "cny"})
    _, given = run(capsys, *args, "--currency", "CNY")

    assert from_env == given
    assert {r["currency"] for r in csv.DictReader(io.StringIO(given))} == {"CNY"}


def test_no_table_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["usage"], {}) == 2
    assert "CONVERSATIONS_TABLE" in capsys.readouterr().err


def test_a_range_that_ends_before_it_begins_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Once an empty report, as if nobody had spent anything.
    args = ["usage", "--table", "t", "--from", "2026-12-31", "--to", "2026-12-01"]
    assert main(args, {}) == 2
    assert "--from 2026-12-31 is after --to 2026-12-01" in capsys.readouterr().err
