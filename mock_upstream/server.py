"""Running the app under uvicorn: on a socket we bind ourselves, with a "ready" signal.

Binding first lets `--port 0` and tests use a free port without a race, and lets the ready line
name the real port.
"""

from __future__ import annotations

import socket
import threading

import uvicorn
from starlette.applications import Starlette

from mock_upstream.app import API_PREFIX


def bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Naming the protocol matters: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # is IPPROTO_TCP, and without it every response whose headers and body are written
    # separately waits 40 ms for the client's delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def origin_of(sock: socket.socket, *, tls: bool = False) -> str:
    host, port = sock.getsockname()[:2]
    scheme = "https" if tls else "http"
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def base_url_of(sock: socket.socket, *, tls: bool = False) -> str:
    return origin_of(sock, tls=tls) + API_PREFIX


class Server(uvicorn.Server):
    """uvicorn's server plus an event set once it accepts connections."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self.ready.set()


def make_server(
    app: Starlette,
    log_level: str = "warning",
    access_log: bool = False,
    *,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> Server:
    """uvicorn for ``app``; over TLS (HTTPS, as the real Zhipu) when given a certificate chain
    and its key (PEM files)."""
    config = uvicorn.Config(
        app,
        log_level=log_level,
        access_log=access_log,
        lifespan="off",
        # Stalled streams would otherwise hold a shutdown forever.
        timeout_graceful_shutdown=1,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
    )
    return Server(config)
