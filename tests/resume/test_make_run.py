"""``make run`` as a new user meets it: ``python -m devtools.stack`` in a process of its own, with
the environment the Makefile gives it and nothing else (ephemeral ports), driven over HTTP.

It must behave as the deployed function does: a client that reads half an answer and reconnects
with ``Last-Event-ID`` gets exactly the rest, a client that leaves does not stop the answer, and
moto (DynamoDB) is a process of its own.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest

from devtools.stack import stack_from_env
from mock_upstream.answer import expected_chunks
from tests.support.resume import chat_url, cut_after
from tests.support.sse_client import read_stream

ROOT = Path(__file__).resolve().parents[2]
QUESTION = "Tell me a long story #chunks=40 #delay=40"
ANNOUNCED = {
    "url": re.compile(r"^  function URL\s+(\S+)", re.M),
    "upstream": re.compile(r"^  fake Zhipu\s+(\S+)", re.M),
    "moto": re.compile(r"^  moto\s+(\S+)", re.M),
    "token": re.compile(r"^  access token\s+(\S+)", re.M),
}


@dataclass
class MakeRun:
    process: subprocess.Popen[str]
    url: str
    upstream: str
    moto: str
    token: str

    def upstream_requests(self, client: httpx.Client) -> list[dict[str, Any]]:
        return client.get(f"{self.upstream}/_mock/requests").json()["requests"]

    def table(self) -> Any:
        """A boto3 DynamoDB client of the stack's moto, and the one table ``make run`` made."""
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=self.moto,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        [name] = ddb.list_tables()["TableNames"]
        return ddb, name


@pytest.fixture(scope="module")
def make_run() -> Iterator[MakeRun]:
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ZHIPU_"))},
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "relay"), str(ROOT)]),
        "PORT": "0",
        "MOCK_PORT": "0",
        "MOTO_PORT": "0",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.stack"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        announced = ""
        while "Ctrl-C stops everything." not in announced:
            line = process.stdout.readline()
            assert line, f"make run ended before it was ready: {announced}"
            announced += line
        found = {name: pattern.search(announced) for name, pattern in ANNOUNCED.items()}
        assert all(found.values()), announced
        yield MakeRun(process, **{name: m.group(1) for name, m in found.items() if m})
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def client(make_run: MakeRun) -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30) as http:
        http.delete(f"{make_run.upstream}/_mock/requests")
        yield http


def wait_for_upstream_end(make_run: MakeRun, client: httpx.Client) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:
        [record] = make_run.upstream_requests(client)
        if record["outcome"] not in ("pending", "open") or time.monotonic() > deadline:
            return record
        time.sleep(0.05)


def test_a_reconnect_mid_answer_gets_exactly_the_rest(make_run: MakeRun, client) -> None:
    url = chat_url(make_run.url, QUESTION, make_run.token)
    half = cut_after(client, "GET", url, events=12)
    last_id = half.events[-1].id or ""
    request_id, _, seen = last_id.rpartition(":")

    rest = read_stream(client, "GET", url, headers={"Last-Event-ID": last_id})

    assert rest.status == 200, rest.raw
    ids = [event.id for event in rest.events]
    assert ids == [f"{request_id}:{n}" for n in range(int(seen) + 1, int(seen) + 1 + len(ids))]
    assert rest.only_terminal_is_last() and rest.terminal.event == "done", rest.names
    [record] = make_run.upstream_requests(client)
    assert half.text + rest.text == "".join(expected_chunks(record["body"]))
    assert len(make_run.upstream_requests(client)) == 1  # the reconnect never reached Zhipu


def test_a_client_that_leaves_leaves_the_answer_running_to_its_end(make_run: MakeRun, client):
    half = cut_after(client, "GET", chat_url(make_run.url, QUESTION, make_run.token), events=5)
    request_id = half.events[0].json["request_id"]

    record = wait_for_upstream_end(make_run, client)

    assert (record["outcome"], record["client_gone"]) == ("completed", False)
    ddb, table = make_run.table()
    deadline = time.monotonic() + 10
    while True:
        items = ddb.query(
            TableName=table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"STREAM#{request_id}"}},
            ConsistentRead=True,
        )["Items"]
        if any(item.get("end", {}).get("BOOL") for item in items) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    frames = [frame["S"] for item in items for frame in item["frames"]["L"]]
    assert [item.get("end", {}).get("BOOL", False) for item in items][-1] is True
    assert frames[-1].startswith(f"id: {request_id}:{len(frames)}\nevent: done\n"), frames[-1]
    terminals = [f for f in frames if re.search(r"^event: (done|error)$", f, re.M)]
    assert terminals == [frames[-1]]
    assert f'"completion_tokens":{record["chunks_sent"]}' in frames[-1]


def listening_pid(port: int) -> int | None:
    """The process that listens on a loopback TCP port (from /proc)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # 0A: LISTEN
            inodes.add(fields[9])
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            links = {os.readlink(fd) for fd in (proc / "fd").iterdir()}
        except OSError:
            continue
        if any(f"socket:[{inode}]" in links for inode in inodes):
            return int(proc.name)
    return None


def test_moto_runs_in_a_process_of_its_own(make_run: MakeRun) -> None:
    moto_pid = listening_pid(int(make_run.moto.rsplit(":", 1)[1]))
    relay_pid = listening_pid(int(make_run.url.rsplit(":", 1)[1]))
    assert relay_pid == make_run.process.pid
    assert moto_pid is not None and moto_pid != relay_pid


def test_keep_running_false_gives_the_old_behaviour_of_closing_the_answer() -> None:
    assert stack_from_env({}).keep_running is True
    assert stack_from_env({"KEEP_RUNNING": "false"}).keep_running is False
    assert stack_from_env({}).moto.own_process is True


def test_a_moto_port_already_taken_ends_make_run_with_the_reason() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "devtools.stack"],
            env={
                **{k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ZHIPU_"))},
                "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "relay"), str(ROOT)]),
                "PORT": "0",
                "MOCK_PORT": "0",
                "MOTO_PORT": str(port),
            },
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode != 0
    assert f"port {port} is in use (set MOTO_PORT)" in done.stderr
