"""Images, video and files in a user message, for vision models: read, checked, described.

Each media part is read into Zhipu's shape (``image_url``, ``video_url``, ``file``,
``file_url``) with its source kept as the caller gave it (an ``http(s)`` URL, a ``data:`` URL
or bare base64); ``upstream/translate.py`` sends image data URLs the way the official SDK does.
Checked here, before any upstream call: base64 decodes, an image is at most 5 MB decoded and
6000 px on a side (Zhipu's limits), file parts do not share a message with images or video.
Stored conversations keep a ``describe`` placeholder instead of the bytes.
"""

from __future__ import annotations

import base64
import binascii
import re
import struct
from dataclasses import dataclass
from typing import Any

from glm_relay.chat.request import bad, sendable
from glm_relay.errors import ErrorCode, RelayError

IMAGE_MAX_BYTES = 5 * 1024 * 1024
IMAGE_MAX_SIDE = 6000
# The content part types that carry media, and the kind of medium each is.
MEDIA_PARTS = {"image_url": "image", "video_url": "video", "file": "file", "file_url": "file"}
DATA_URL = re.compile(r"^data:([\w.+-]+/[\w.+-]+)?((?:;[\w.+-]+=[\w.+-]+)*);base64,", re.ASCII)
MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
    (b"%PDF", "application/pdf"),
)
URL_SHOWN = 200


@dataclass(frozen=True, slots=True)
class Source:
    """Where a medium comes from: a URL, or bytes given inline (``mime`` from the data URL,
    else from the bytes' magic number; ``size`` decoded)."""

    url: str | None = None
    mime: str = ""
    size: int = 0
    data: bytes = b""


def read_media_part(kind: str, part: dict[str, Any], where: str) -> dict[str, Any]:
    """One media part in Zhipu's shape, its source checked (``kind`` is its ``type``)."""
    if kind == "file":
        return {"type": "file", "file": _file(part.get("file"), where)}
    inner = part.get(kind)
    if not isinstance(inner, dict) or not isinstance(inner.get("url"), str):
        raise _invalid(f"{where}.{kind} must be an object with a url string")
    extra = sorted(k for k, v in inner.items() if k != "url" and v is not None)
    if kind == "image_url" and inner.get("detail") in ("auto", None):
        extra = [k for k in extra if k != "detail"]  # OpenAI's default: changes nothing
    if extra:
        raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{where}.{kind}.{extra[0][:32]} is not supported")
    url = inner["url"]
    source = read_source(url, f"{where}.{kind}.url")
    if kind == "image_url":
        check_image(source, where)
    return {"type": kind, kind: {"url": url}}


def _file(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _invalid(f"{where}.file must be an object with file_url or file_data")
    if value.get("file_id") is not None:
        raise bad(
            ErrorCode.UNSUPPORTED_CONTENT,
            f"{where}.file.file_id: uploaded files are not supported; send file_url or file_data",
        )
    given = [k for k in ("file_url", "file_data") if value.get(k) is not None]
    if len(given) != 1 or not isinstance(value[given[0]], str):
        raise _invalid(f"{where}.file needs exactly one of file_url and file_data, a string")
    extra = sorted(k for k, v in value.items() if v is not None and k not in (*given, "filename"))
    if extra:
        raise bad(ErrorCode.UNSUPPORTED_CONTENT, f"{where}.file.{extra[0][:32]} is not supported")
    read_source(value[given[0]], f"{where}.file.{given[0]}")
    return {given[0]: value[given[0]]}


def read_source(value: str, where: str) -> Source:
    """An ``http(s)`` URL, a ``data:<type>;base64,`` URL or bare base64 (as the SDK sends)."""
    sendable(value, where, code="invalid_messages")
    lowered = value[:8].lower()
    if lowered.startswith(("https://", "http://")):
        if len(value) > 8 and not any(c.isspace() for c in value):
            return Source(url=value)
        raise _invalid(f"{where} is not a valid URL")
    mime, payload = "", value
    match = DATA_URL.match(value)
    if match:
        mime, payload = (match.group(1) or "").lower(), value[match.end() :]
    elif value.startswith("data:"):
        raise _invalid(f"{where}: a data URL must be data:<type>;base64,<data>")
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise _invalid(f"{where} is neither an http(s) URL nor valid base64 data") from None
    if not data:
        raise _invalid(f"{where} holds no data")
    return Source(mime=mime or sniff(data), size=len(data), data=data)


def check_image(source: Source, where: str) -> None:
    """Zhipu's image limits: 5 MB decoded, 6000 px on a side (``media_too_large``)."""
    if source.url is not None:
        return
    if source.mime and not source.mime.startswith("image/"):
        raise _invalid(f"{where}: an image_url data URL must hold an image, not {source.mime}")
    if source.size > IMAGE_MAX_BYTES:
        raise RelayError(
            ErrorCode.MEDIA_TOO_LARGE,
            f"{where}: the image is {source.size} bytes; the upstream takes up to "
            f"{IMAGE_MAX_BYTES} bytes (5 MB)",
            extra={"limit_bytes": IMAGE_MAX_BYTES},
        )
    size = dimensions(source.data)
    if size is not None and max(size) > IMAGE_MAX_SIDE:
        raise RelayError(
            ErrorCode.MEDIA_TOO_LARGE,
            f"{where}: the image is {size[0]}x{size[1]} px; the upstream takes up to "
            f"{IMAGE_MAX_SIDE}x{IMAGE_MAX_SIDE}",
            extra={"limit_pixels": IMAGE_MAX_SIDE},
        )


def check_mixing(kinds: list[str], where: str) -> None:
    """Zhipu refuses file parts beside image or video parts in one message."""
    if "file" in kinds and ("image" in kinds or "video" in kinds):
        raise bad(
            ErrorCode.UNSUPPORTED_CONTENT,
            f"{where}: file parts cannot share a message with image or video parts",
        )


def sniff(data: bytes) -> str:
    """The MIME type read from the first bytes, or ``""``."""
    for magic, mime in MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp":
        return "video/mp4"
    return ""


def dimensions(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG, read from its header; ``None`` otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"GIF8") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"\xff\xd8"):
        at = 2
        while at + 9 <= len(data) and data[at] == 0xFF:
            marker = data[at + 1]
            length = struct.unpack(">H", data[at + 2 : at + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[at + 5 : at + 9])
                return width, height
            at += 2 + length
    return None


def has_media(content: Any) -> bool:
    """Whether a message's content carries a medium (media contents are part lists)."""
    return isinstance(content, list) and any(p.get("type") in MEDIA_PARTS for p in content)


def content_text(content: Any) -> str:
    """The text of a message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p["text"] for p in content if p.get("type") == "text")
    return ""


def describe(content: Any) -> str:
    """The content as text, each medium replaced by a placeholder such as
    ``[image: image/png, 12345 bytes]`` or ``[image: https://...]``: what conversations store
    and logs show, never the bytes."""
    if not isinstance(content, list):
        return content_text(content)
    lines = []
    for part in content:
        kind = part.get("type")
        if kind == "text":
            if part["text"]:
                lines.append(part["text"])
            continue
        inner = part.get(kind) or {}
        value = inner.get("url") or inner.get("file_url") or inner.get("file_data") or ""
        lines.append(placeholder(MEDIA_PARTS.get(kind, "medium"), value))
    return "\n".join(lines)


def placeholder(kind: str, value: str) -> str:
    """``[kind: URL]`` or ``[kind: type, N bytes]`` for a source already checked."""
    if value[:8].lower().startswith(("https://", "http://")):
        shown = value if len(value) <= URL_SHOWN else value[: URL_SHOWN - 3] + "..."
        return f"[{kind}: {shown}]"
    match = DATA_URL.match(value)
    payload = value[match.end() :] if match else value
    mime = (match.group(1) or "").lower() if match else ""
    head = base64.b64decode(payload[:64], validate=False) if payload else b""
    size = len(payload) * 3 // 4 - payload[-2:].count("=")
    return f"[{kind}: {mime or sniff(head) or 'unknown type'}, {size} bytes]"


def _invalid(message: str) -> RelayError:
    return RelayError(ErrorCode.INVALID_MESSAGES, message)
