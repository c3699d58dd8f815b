"""A keep-alive front for moto, so that warm calls reuse their connection as they do with DynamoDB
(used by ``bench/ddb_clients.py``).

moto's server (werkzeug) answers every request with ``Connection: close``. Against it, each
"warm" call would open a new connection, and over TLS pay a full handshake, which DynamoDB's
endpoints do not make a client do. This proxy keeps the client's connection (HTTP/1.1, optionally
TLS) open and forwards each request to moto on a fresh loopback connection, returning moto's
answer with ``Content-Length`` and without ``Connection: close``. It runs its own event loop on
a daemon thread; every option under test goes through it alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devtools.moto_backend import create_relay_table

REGION = "us-east-1"

MAX_HEAD = 64 * 1024
HOP_BY_HOP = (b"connection", b"keep-alive", b"transfer-encoding", b"content-length")


class KeepAliveProxy:
    def __init__(self, upstream: tuple[str, int], ssl_context: ssl.SSLContext | None = None):
        self.upstream = upstream
        self.ssl_context = ssl_context
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()

    def start(self) -> int:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        self.port = future.result(10)
        return self.port

    async def _start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.ssl_context)
        return int(self._server.sockets[0].getsockname()[1])

    def stop(self) -> None:
        async def close() -> None:
            if self._server is not None:
                self._server.close()
            # Clients may still hold kept-alive connections: cut them, their handlers then end.
            for writer in list(self._clients):
                writer.transport.abort()
            for _ in range(100):
                if not self._clients:
                    break
                await asyncio.sleep(0.01)

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(close(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        if not self._thread.is_alive():
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                if len(head) > MAX_HEAD:
                    return
                body = await reader.readexactly(_content_length(head))
                writer.write(await self._forward(head, body))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ssl.SSLError):
            return
        finally:
            self._clients.discard(writer)
            writer.close()

    async def _forward(self, head: bytes, body: bytes) -> bytes:
        up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            # Read by length, not to the end: werkzeug closes its side only ~10 ms later.
            answer_head = await up_reader.readuntil(b"\r\n\r\n")
            lines = answer_head[:-4].split(b"\r\n")
            if any(line.lower() == b"transfer-encoding: chunked" for line in lines[1:]):
                payload = await _read_chunked(up_reader)
            else:
                payload = await up_reader.readexactly(_content_length(answer_head))
        finally:
            up_writer.close()
        kept = [
            line for line in lines[1:] if line.split(b":", 1)[0].strip().lower() not in HOP_BY_HOP
        ]
        kept.append(b"Content-Length: %d" % len(payload))
        return b"\r\n".join([lines[0], *kept]) + b"\r\n\r\n" + payload


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip())
    return 0


async def _read_chunked(reader: asyncio.StreamReader) -> bytes:
    out = bytearray()
    while True:
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        if size == 0:
            await reader.readuntil(b"\r\n")
            return bytes(out)
        out += await reader.readexactly(size)
        await reader.readexactly(2)


@contextmanager
def moto_servers(workdir: Path) -> Iterator[dict[str, Any]]:
    """moto (``ThreadedMotoServer``) on loopback behind two keep-alive fronts
    (``bench/ddb/keepalive.py``): plain HTTP, and HTTPS with a certificate from a throwaway
    ``trustme`` CA. The CA goes into a copy of certifi's bundle, so that every client loads a
    bundle of the usual size, as it would in Lambda. Yields both endpoints, the bundle's path
    and a boto3 client (for making the tables)."""
    import logging
    import ssl

    import boto3
    import certifi
    import trustme
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    plain = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    plain.start()
    ca = trustme.CA()
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)
    bundle = workdir / "ca-bundle.pem"
    bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + ca.cert_pem.bytes())
    host, port = plain.get_host_and_port()
    keepalive = KeepAliveProxy((host, port))
    keepalive_tls = KeepAliveProxy((host, port), server_context)
    keepalive.start()
    keepalive_tls.start()
    try:
        endpoint = f"http://{host}:{port}"
        ddb = boto3.client(
            "dynamodb",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield {
            "http": f"http://127.0.0.1:{keepalive.port}",
            "https": f"https://127.0.0.1:{keepalive_tls.port}",
            "bundle": str(bundle),
            "ddb": ddb,
        }
    finally:
        keepalive_tls.stop()
        keepalive.stop()
        plain.stop()


@contextmanager
def fresh_table(ddb: Any) -> Iterator[dict[str, str]]:
    """A new table with one 5-turn conversation, deleted afterwards: moto's Query slows down as
    its table grows, so every process gets the same small one."""
    table = f"bench-{uuid.uuid4().hex[:8]}"
    create_relay_table(ddb, table)
    conv_pk = "CONV#" + uuid.uuid4().hex
    for number in range(1, 6):
        ddb.put_item(
            TableName=table,
            Item={
                "pk": {"S": conv_pk},
                "sk": {"S": f"TURN#{number:08d}"},
                "question": {"S": "q" * 200},
                "answer": {"S": "a" * 2000},
                "status": {"S": "complete"},
                "expires_at": {"N": "4102444800"},
            },
        )
    try:
        yield {"BENCH_TABLE": table, "BENCH_CONV_PK": conv_pk}
    finally:
        ddb.delete_table(TableName=table)
