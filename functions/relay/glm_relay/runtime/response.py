"""The streaming response the handler returns: status and headers first, then body frames."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field


@dataclass(slots=True)
class StreamingResponse:
    """A response whose status and headers are decided before its body exists.

    ``body`` yields one ``bytes`` object per frame; the consumer flushes each one as it arrives and
    must ``aclose()`` the iterator if it stops early, which releases the upstream request.
    """

    status_code: int
    headers: dict[str, str]
    body: AsyncIterator[bytes]
    cookies: list[str] = field(default_factory=list)

    def prelude(self) -> bytes:
        """The function-URL metadata prelude (JSON, must fit in the first 16 KB)."""
        return json.dumps(
            {"statusCode": self.status_code, "headers": self.headers, "cookies": self.cookies},
            separators=(",", ":"),
        ).encode()


async def single_chunk(payload: bytes) -> AsyncIterator[bytes]:
    """A body of exactly one frame (JSON errors, the demo page)."""
    yield payload


def fixed_response(
    status_code: int, headers: dict[str, str], payload: bytes = b""
) -> StreamingResponse:
    """A response whose whole body is known up front."""
    return StreamingResponse(status_code, headers, single_chunk(payload) if payload else empty())


async def empty() -> AsyncIterator[bytes]:
    """A body with no frames (204, HEAD)."""
    return
    yield  # pragma: no cover - makes this an async generator
