"""What tests can ask the server: the request log, the stream counters, a departed client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from upstream_support import API_KEY, HTTP, body, client, post, sign

from mock_upstream.testing import MockUpstream, running_mock_upstream

ROOT = Path(__file__).resolve().parents[2]


def open_stream_and_leave(upstream: MockUpstream, text: str, frames_to_read: int) -> None:
    """Read a few frames, then close the connection mid-stream."""
    # Its own client, so leaving really closes the connection.
    with (
        client(timeout=5.0) as http,
        http.stream(
            "POST",
            upstream.base_url + "/chat/completions",
            json=body(text),
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as response,
    ):
        seen = b""
        for data in response.iter_raw():
            seen += data
            if seen.count(b"\n\n") >= frames_to_read:
                break


def wait_for(predicate, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_client_closing_mid_stream_is_seen_as_client_gone(upstream: MockUpstream) -> None:
    open_stream_and_leave(upstream, "#chunks=200 #delay=20", frames_to_read=3)

    wait_for(lambda: upstream.stats()["cancelled_streams"] == 1)
    stats = upstream.stats()
    assert stats["open_streams"] == 0 and stats["completed_streams"] == 0
    record = upstream.requests()[-1]
    assert record["client_gone"] is True and record["outcome"] == "client_gone"
    assert 3 <= record["chunks_sent"] < 20
    assert record["ended"] >= record["time"]


def test_client_gone_is_noticed_while_the_server_is_silent(upstream: MockUpstream) -> None:
    open_stream_and_leave(upstream, "#fault=stall #hold=30000 #chunks=4", frames_to_read=2)
    started = time.monotonic()

    wait_for(lambda: upstream.stats()["cancelled_streams"] == 1)
    assert time.monotonic() - started < 1.0
    assert upstream.requests()[-1]["chunks_sent"] == 2


def test_client_gone_before_the_headers_is_recorded(upstream: MockUpstream) -> None:
    address = urlsplit(upstream.origin)
    sock = socket.create_connection((address.hostname, address.port))
    payload = json.dumps(body("#fault=slow_headers #hold=30000")).encode()
    sock.sendall(
        b"POST /api/paas/v4/chat/completions HTTP/1.1\r\nHost: x\r\n"
        b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(payload)).encode()
        + b"\r\n\r\n"
        + payload
    )
    wait_for(lambda: upstream.stats()["open_streams"] == 1)
    sock.close()

    wait_for(lambda: upstream.stats()["cancelled_streams"] == 1)
    record = upstream.requests()[-1]
    assert record["client_gone"] is True and record["status"] is None


def test_open_streams_counts_streams_in_progress(upstream: MockUpstream) -> None:
    with (
        client(timeout=5.0) as http,
        http.stream(
            "POST",
            upstream.base_url + "/chat/completions",
            json=body("#chunks=20 #delay=10"),
            headers={"Authorization": f"Bearer {API_KEY}"},
        ) as response,
    ):
        pieces = response.iter_raw()
        next(pieces)
        assert upstream.stats()["open_streams"] == 1
        for _ in pieces:
            pass

    stats = upstream.wait_idle()
    assert stats == {
        "requests": 1,
        "open_streams": 0,
        "completed_streams": 1,
        "cancelled_streams": 0,
        "dropped_streams": 0,
    }
    assert upstream.requests()[-1]["outcome"] == "completed"


def test_request_log_has_body_claims_headers_and_timing(upstream: MockUpstream) -> None:
    before = time.time()
    request = body("log me #chunks=2 #delay=1", temperature=0.5)
    post(upstream.base_url, request, token=sign())

    (record,) = upstream.requests()
    assert record["seq"] >= 1 and record["method"] == "POST"
    assert record["path"] == "/api/paas/v4/chat/completions"
    assert record["body"] == request
    assert record["stream"] is True
    assert record["jwt_claims"]["api_key"] == "testkey"
    assert record["headers"]["content-type"] == "application/json"
    assert record["directives"] == {"chunks": 2, "delay_ms": 1}
    assert (record["status"], record["error_code"], record["chunks_sent"]) == (200, None, 2)
    assert before <= record["time"] <= record["ended"] <= time.time()


def test_clear_empties_the_log_and_counters(upstream: MockUpstream) -> None:
    post(upstream.base_url, body("one"))
    response = HTTP.delete(upstream.origin + "/_mock/requests")

    assert response.status_code == 204
    assert HTTP.get(upstream.origin + "/_mock/requests").json() == {"requests": []}
    assert upstream.stats()["requests"] == 0 and upstream.stats()["completed_streams"] == 0


def test_health_and_unknown_paths(upstream: MockUpstream) -> None:
    assert HTTP.get(upstream.origin + "/_mock/health").json() == {"status": "ok"}
    assert HTTP.get(upstream.base_url + "/chat/completions").status_code == 405
    assert HTTP.post(upstream.base_url + "/embeddings").status_code == 404


def test_bad_key_rotation_request_is_refused(upstream: MockUpstream) -> None:
    response = HTTP.put(upstream.origin + "/_mock/api-key", json={"api_key": "no-dot"})
    assert response.status_code == 400
    assert post(upstream.base_url, body(stream=False)).status_code == 200


def test_in_process_server_stops_cleanly_with_a_stalled_stream_open() -> None:
    started = time.monotonic()
    with running_mock_upstream(api_key=API_KEY) as up:
        assert up.base_url == up.origin + "/api/paas/v4"
        with (
            client(timeout=5.0) as http,
            http.stream(
                "POST",
                up.base_url + "/chat/completions",
                json=body("#fault=stall #hold=60000 #chunks=2"),
                headers={"Authorization": f"Bearer {API_KEY}"},
            ) as response,
        ):
            next(response.iter_raw())
            inside = time.monotonic()
    assert time.monotonic() - inside < 3.0, "shutdown waited for the stalled stream"
    assert inside - started < 3.0


def test_command_line_server_prints_one_ready_line_and_takes_the_key_from_env() -> None:
    env = {**os.environ, "ZHIPU_API_KEY": API_KEY, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_upstream", "--port", "0", "--chunk-delay-ms", "1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("mock_upstream ready base_url=http://127.0.0.1:")
        base_url = line.split("=", 1)[1]
        assert base_url.endswith("/api/paas/v4")
        response = post(base_url, body("#chunks=3"))
        assert response.status_code == 200 and response.content.endswith(b"data: [DONE]\n\n")
    finally:
        process.terminate()
        process.wait(10)
    assert process.stdout.read() == ""  # nothing but the ready line on stdout


def test_command_line_server_refuses_to_start_without_a_key() -> None:
    env = {k: v for k, v in os.environ.items() if k != "ZHIPU_API_KEY"}
    env["PYTHONPATH"] = str(ROOT)
    result = subprocess.run(
        [sys.executable, "-m", "mock_upstream", "--port", "0"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "ZHIPU_API_KEY" in result.stderr
    assert result.stdout == ""


def test_request_from_an_httpx_client_is_seen_with_its_headers(upstream: MockUpstream) -> None:
    HTTP.post(
        upstream.base_url + "/chat/completions",
        json=body("x", stream=False),
        headers={"Authorization": f"Bearer {API_KEY}", "X-Trace": "abc"},
    )
    assert upstream.requests()[-1]["headers"]["x-trace"] == "abc"


def test_log_keeps_tools_tool_messages_parts_and_new_directives(upstream: MockUpstream) -> None:
    tools = [
        {"type": "function", "function": {"name": "get_time", "parameters": {}}},
        {"type": "web_search", "web_search": {"count": 2, "search_engine": "search_pro"}},
    ]
    payload = body(
        "now? #tool=get_time #search_at=1 #tool_frames=repeat",
        model="glm-4.6v",
        tools=tools,
        tool_stream=True,
        thinking={"type": "enabled", "clear_thinking": False},
        messages=[
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "now? #tool=get_time #search_at=1 #tool_frames=repeat",
                    },
                    {"type": "image_url", "image_url": {"url": "https://img.example/a.png"}},
                ],
            },
        ],
    )
    response = post(upstream.base_url, payload)
    assert response.status_code == 200

    (record,) = upstream.requests()
    assert record["body"] == payload
    assert record["directives"] == {
        "search_at": 1,
        "tools": ["get_time"],
        "tool_frames": ["repeat"],
    }
    assert record["status"] == 200 and record["outcome"] == "completed"
