"""The container's pooled HTTP(S) connections: httpx and httpcore over asyncio's own streams.

httpx's default network layer runs through anyio: every read arms a cancel scope and turns the
socket's read registration on and off (two system calls), and a request leaves as two writes,
its head and then its body, each a TLS record and a system call that wakes the server twice.
On the path to an answer's first token that cost about half a millisecond here.
``AsyncioBackend`` plugs into httpcore's network-backend interface instead: each connection
keeps reading into a buffer, and a request's head and body are held until its answer is read,
then leave in one write. httpcore still speaks HTTP/1.1, pools and keeps connections alive;
httpx still maps its errors. Certificates are verified with the context given, always.
"""

from glm_relay.http_pool.backend import AsyncioBackend
from glm_relay.http_pool.hooks import when_out_of_hands
from glm_relay.http_pool.stream import COALESCE_LIMIT, READ_HIGH_WATER, AsyncioStream
from glm_relay.http_pool.transport import PooledTransport, pooled_transport

__all__ = [
    "COALESCE_LIMIT",
    "READ_HIGH_WATER",
    "AsyncioBackend",
    "AsyncioStream",
    "PooledTransport",
    "pooled_transport",
    "when_out_of_hands",
]
