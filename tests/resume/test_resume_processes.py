"""Resuming across processes: two containers of the function that share nothing but DynamoDB (moto).

One is ``python -m devtools.local_url --keep-running`` in a process of its own, configured from
the environment exactly as Lambda configures the function; the other is the test process's.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.stack import DevStack, free_port
from mock_upstream.answer import expected_chunks
from tests.support.resume import Container, chat_url, cut_after, wait_upstream_idle
from tests.support.sse_client import read_stream
from tests.support.upstream import upstream_bodies

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("upstream_log")


@pytest.fixture(scope="module")
def other_process(stack: DevStack) -> Iterator[str]:
    """The function behind a local function URL in its own process; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        **stack.runtime_env(),
        "REQUIRE_ACCESS_TOKEN": "true",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "functions" / "relay"), str(ROOT)]),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "devtools.local_url", "--port", str(port), "--keep-running"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        ready = process.stdout.readline()
        assert "listening on" in ready, ready
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.parametrize(
    "direction", ["started there, resumed here", "started here, resumed there"]
)
def test_an_answer_started_in_one_process_is_resumed_in_another(
    stack, client, container: Container, other_process: str, direction: str
) -> None:
    there, here = other_process, container.url
    start, finish = (there, here) if direction.startswith("started there") else (here, there)
    url = chat_url(start, "Across processes #chunks=30 #delay=25", stack.token)
    cut = cut_after(client, "GET", url, events=4)

    rest = read_stream(
        client,
        "GET",
        chat_url(finish, "ignored", stack.token),
        headers={"Last-Event-ID": cut.events[-1].id or ""},
    )

    [sent] = upstream_bodies(stack, client)
    assert cut.text + rest.text == "".join(expected_chunks(sent))
    request_id = cut.events[0].json["request_id"]
    assert [e.id for e in rest.events] == [f"{request_id}:{n}" for n in range(5, 33)]
    assert rest.only_terminal_is_last() and rest.terminal.event == "done"
    stats = wait_upstream_idle(stack, client)
    assert (stats["completed_streams"], stats["cancelled_streams"]) == (1, 0)
