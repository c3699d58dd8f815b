"""The package's one HTTP/1.1 codec for clients, without I/O and on the standard library alone.

The connection pool (``glm_relay.http_pool``) streams responses through it; the runtime loop's
Runtime API client and the secrets-extension source read whole responses with
``read_response`` (``glm_relay.http1.whole``). It reads a response as h11 reads one (RFC 9112):
``tests/unit/test_http1_differential.py`` feeds generated responses, split anywhere, to both
and requires the same outcome, and names the few places where this codec is stricter on
purpose. Only what a client sending one request at a time needs: no pipelining, no upgrades.

- ``framing``: the request side (a head, a chunked body, trailers) and the shared constants;
- ``fields``: header fields (a head's or a trailer section's), validated and unfolded;
- ``head``: the status line, the response head and how its body is framed;
- ``body``: the decoders of a body (Content-Length, chunked, until the server closes).
"""

from glm_relay.http1.body import Body, ChunkedBody, LengthBody, UntilCloseBody
from glm_relay.http1.fields import ProtocolError
from glm_relay.http1.framing import (
    CHUNK_FORMAT,
    CRLF,
    chunked,
    last_chunk,
    request_head,
)
from glm_relay.http1.head import MAX_HEAD_BYTES, HeadReader, ResponseHead, parse_head

__all__ = [
    "CHUNK_FORMAT",
    "CRLF",
    "MAX_HEAD_BYTES",
    "Body",
    "ChunkedBody",
    "HeadReader",
    "LengthBody",
    "ProtocolError",
    "ResponseHead",
    "UntilCloseBody",
    "chunked",
    "last_chunk",
    "parse_head",
    "request_head",
]
