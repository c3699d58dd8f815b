"""Small real images for vision tests: PNGs of any size, made here (no files to keep)."""

from __future__ import annotations

import base64
import random
import struct
import zlib


def png(width: int, height: int, *, noise: bool = False, seed: int = 7) -> bytes:
    """A valid RGB PNG; ``noise`` fills it with random pixels, so it barely compresses (a way
    to get a large image from small dimensions)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    rng = random.Random(seed)
    rows = []
    for y in range(height):
        pixels = rng.randbytes(3 * width) if noise else bytes((y * 40 % 256, 90, 200)) * width
        rows.append(b"\0" + pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"".join(rows), 1)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{b64(data)}"


def image_part(url: str) -> dict[str, object]:
    return {"type": "image_url", "image_url": {"url": url}}
