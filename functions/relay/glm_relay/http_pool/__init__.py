"""The container's pooled HTTP(S) connections: an httpx transport over asyncio's own streams.

httpx sends through ``PooledTransport`` as through its own transport and gets an
``httpx.Response`` whose body streams as it arrives. Below it, no httpcore, h11 or anyio (their
import alone is 10 to 15 ms of a cold start): ``glm_relay.http1`` frames HTTP/1.1,
``http_pool.transport`` keeps connections per origin, ``http_pool.exchange`` is one request on
one of them, ``http_pool.stream`` is one connection.
httpx's default layer took about a millisecond of CPU on the path to an answer's first token:
a request went out as two writes (its head, then its body: two TLS records and two wake-ups
of the server), every read armed a cancel scope and toggled the socket's read registration,
and the pool's locks yielded to the event loop twice. Here a request's head and body leave in
one write, a connection keeps reading into a bounded buffer, and a request goes from the
transport to the wire in one task step. Certificates are verified with the context given,
always.
"""

from glm_relay.http_pool.backend import AsyncioBackend
from glm_relay.http_pool.hooks import when_out_of_hands
from glm_relay.http_pool.stream import COALESCE_LIMIT, READ_HIGH_WATER, AsyncioStream
from glm_relay.http_pool.transport import PooledTransport

__all__ = [
    "COALESCE_LIMIT",
    "READ_HIGH_WATER",
    "AsyncioBackend",
    "AsyncioStream",
    "PooledTransport",
    "when_out_of_hands",
]
