"""The fake Zhipu server in a background thread, for pytest and scripts.

from mock_upstream.testing import running_mock_upstream

with running_mock_upstream(api_key="devid.devsecret", chunk_delay_ms=2) as upstream:
    client = ZhipuAiClient(api_key="devid.devsecret", base_url=upstream.base_url)
    ...
    assert upstream.requests()[-1]["auth"] == "api_key"
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from mock_upstream.app import API_PREFIX, build_app
from mock_upstream.options import MockOptions
from mock_upstream.server import bind, make_server, origin_of

START_TIMEOUT_S = 10.0

# httpx writes a request's headers and body in two sends; with Nagle's algorithm on, the body
# waits for the server's delayed ACK (40 ms on Linux), so every PUT would take 40 ms.
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


class MockUpstream:
    """A handle on a running server: its URLs and its introspection endpoints."""

    def __init__(self, origin: str, options: MockOptions) -> None:
        self.origin = origin
        self.base_url = origin + API_PREFIX
        self.options = options
        self.api_key = options.api_key
        # One client for the introspection calls: building one per call costs more than the call.
        self._http = httpx.Client(
            base_url=origin,
            timeout=10.0,
            trust_env=False,
            transport=httpx.HTTPTransport(socket_options=NODELAY),
        )

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        response.raise_for_status()
        return response

    def close(self) -> None:
        self._http.close()

    def requests(self) -> list[dict[str, Any]]:
        """The requests received so far, oldest first (see README for the fields)."""
        result: list[dict[str, Any]] = self._call("GET", "/_mock/requests").json()["requests"]
        return result

    def clear(self) -> None:
        """Forget the request log, the counters and the `#times` history."""
        self._call("DELETE", "/_mock/requests")

    def set_api_key(self, api_key: str) -> None:
        """Accept `api_key` instead of the current key from now on (a key rotation)."""
        self._call("PUT", "/_mock/api-key", json={"api_key": api_key})
        self.api_key = api_key

    def set_key_fault(self, key_id: str, fault: str | None) -> None:
        """Answer every request signed with `key_id` as an `invalid` key, one out of `balance`
        or one under a `rate_limit` would be (`None`: serve it again)."""
        self._call("PUT", f"/_mock/keys/{key_id}", json={"fault": fault})

    def stats(self) -> dict[str, int]:
        result: dict[str, int] = self._call("GET", "/_mock/stats").json()
        return result

    def wait_idle(self, timeout: float = 5.0) -> dict[str, int]:
        """Wait until no stream is open (the server has noticed every ending); return the stats.

        A client that closes its connection is noticed a moment later, not at once.
        """
        deadline = time.monotonic() + timeout
        while True:
            stats = self.stats()
            if stats["open_streams"] == 0 or time.monotonic() > deadline:
                return stats
            time.sleep(0.01)


@contextmanager
def running_mock_upstream(
    api_key: str = "devid.devsecret", *, host: str = "127.0.0.1", port: int = 0, **options: Any
) -> Iterator[MockUpstream]:
    """Start the server on a free loopback port; it is ready when the `with` body runs and
    stopped (open streams cancelled) when it ends. `options` are `MockOptions` fields."""
    mock_options = MockOptions(api_key=api_key, **options)
    sock = bind(host, port)
    server = make_server(build_app(mock_options))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="mock-upstream", daemon=True
    )
    thread.start()
    try:
        if not server.ready.wait(START_TIMEOUT_S):
            raise RuntimeError("mock upstream did not start")
        handle = MockUpstream(origin_of(sock), mock_options)
        try:
            yield handle
        finally:
            handle.close()
    finally:
        server.should_exit = True
        thread.join(timeout=5.0)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout=5.0)
        sock.close()
