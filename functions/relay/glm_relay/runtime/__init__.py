"""A Lambda runtime loop that streams responses from Python, on the standard library alone.

The managed Python runtime buffers a handler's whole answer; this package replaces its loop (see
``functions/relay/bootstrap``) with one that writes each frame the moment it exists. It imports
nothing else of glm_relay: a handler only has to return a ``StreamingResponse``.

Example:
    async def handle(event, context: InvocationContext) -> StreamingResponse:
        return fixed_response(200, {"Content-Type": "text/plain"}, b"hello")
"""

from glm_relay.runtime.context import InvocationContext, now_ms
from glm_relay.runtime.response import StreamingResponse, empty, fixed_response, single_chunk

__all__ = [
    "InvocationContext",
    "StreamingResponse",
    "empty",
    "fixed_response",
    "now_ms",
    "single_chunk",
]
