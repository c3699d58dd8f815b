"""Content parts for vision models: checking them and describing what they carry.

The answer to a message with media starts with one sentence per part (an image's sniffed type,
size and dimensions, or its URL), so a test can prove that the bytes it sent reached the model
intact. Text models take no parts at all: the real API refuses a part array for them.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass
from typing import Any

from mock_upstream import errors

MAX_IMAGE_BYTES = 5 * 1024 * 1024
PART_TYPES = frozenset({"text", "image_url", "video_url", "file", "file_url"})
_URL_SCHEMES = ("http://", "https://")


@dataclass(frozen=True)
class Media:
    """One non-text part: `kind` is image, video or file; `url` or decoded `data`."""

    kind: str
    url: str | None = None
    data: bytes | None = None


def _bad(field: str, why: str) -> errors.ZhipuError:
    return errors.ZhipuError(400, errors.BAD_PARAMETER, f"Invalid {field} parameter: {why}.")


def _decode(value: str, field: str) -> bytes:
    """Base64 with or without the `data:<type>;base64,` prefix (the official SDK strips it)."""
    if value.startswith("data:"):
        header, comma, value = value.partition(",")
        if not comma or not header.endswith(";base64"):
            raise _bad(field, "a data URL must be base64 (data:<type>;base64,...)")
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise _bad(field, "it must be an http(s) URL or base64 data") from None


def _url_or_data(holder: Any, field: str, key: str = "url") -> tuple[str | None, bytes | None]:
    if not isinstance(holder, dict):
        raise _bad(field, "it must be an object")
    value = holder.get(key)
    if value is None:
        raise errors.ZhipuError(
            400, errors.MISSING_FIELD, f"The {field}.{key} parameter is required."
        )
    if not isinstance(value, str) or not value:
        raise _bad(f"{field}.{key}", "it must be a non-empty string")
    if value.startswith(_URL_SCHEMES):
        return value, None
    return None, _decode(value, f"{field}.{key}")


def _media(part: dict[str, Any], where: str) -> Media | None:
    kind = part.get("type")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise _bad(f"{where}.text", "a text part needs a string")
        return None
    if kind == "image_url":
        url, data = _url_or_data(part.get("image_url"), f"{where}.image_url")
        if data is not None and len(data) > MAX_IMAGE_BYTES:
            raise errors.ZhipuError(
                400, errors.BAD_REQUEST, f"{where}.image_url: the image is over 5 MB."
            )
        return Media("image", url, data)
    if kind == "video_url":
        url, data = _url_or_data(part.get("video_url"), f"{where}.video_url")
        return Media("video", url, data)
    if kind == "file":
        holder = part.get("file")
        if isinstance(holder, dict) and holder.get("file_data") is not None:
            data = holder["file_data"]
            if not isinstance(data, str):
                raise _bad(f"{where}.file.file_data", "it must be base64 text")
            return Media("file", None, _decode(data, f"{where}.file.file_data"))
        url, data = _url_or_data(holder, f"{where}.file", "file_url")
        return Media("file", url, data)
    # The older shape: {"type": "file_url", "file_url": {"url": ...}}.
    url, data = _url_or_data(part.get("file_url"), f"{where}.file_url")
    return Media("file", url, data)


def check_parts(content: list[Any], where: str) -> list[Media]:
    """Validate one message's parts for a vision model; return its media in order."""
    media: list[Media] = []
    for i, part in enumerate(content):
        here = f"{where}[{i}]"
        if not isinstance(part, dict):
            raise _bad(here, "a content list must hold part objects")
        if part.get("type") not in PART_TYPES:
            raise errors.ZhipuError(
                400,
                errors.BAD_PARAMETER,
                f"messages.content.type 参数非法: {here}.type must be one of "
                + ", ".join(sorted(PART_TYPES))
                + ".",
            )
        item = _media(part, here)
        if item is not None:
            media.append(item)
    kinds = {m.kind for m in media}
    if "file" in kinds and kinds & {"image", "video"}:
        raise errors.ZhipuError(
            400,
            errors.BAD_REQUEST,
            f"{where}: file parts cannot be mixed with image or video parts.",
        )
    return media


def media_of(content: Any) -> list[Media]:
    """The media of an already validated content (none for a string)."""
    if not isinstance(content, list):
        return []
    out: list[Media] = []
    for part in content:
        if isinstance(part, dict):
            try:
                item = _media(part, "content")
            except errors.ZhipuError:
                continue
            if item is not None:
                out.append(item)
    return out


def sniff(data: bytes) -> tuple[str, tuple[int, int] | None]:
    """The format named by the magic bytes, and (width, height) for PNG, GIF and JPEG."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return "PNG", (width, height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return "GIF", (width, height)
    if data.startswith(b"\xff\xd8"):
        return "JPEG", _jpeg_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP", None
    if data.startswith(b"BM"):
        return "BMP", None
    if data.startswith(b"%PDF"):
        return "PDF", None
    if data[4:8] == b"ftyp":
        return "MP4", None
    return "unknown", None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Walk the JPEG segments to the first start-of-frame marker."""
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        i += 2 + length
    return None


_COLON, _COMMA = "\uff1a", "\uff0c"  # fullwidth, as Chinese text writes them
_NAMES = {
    "en": {"image": "Image", "video": "Video", "file": "File"},
    "zh": {"image": "图片", "video": "视频", "file": "文件"},
}


def describe(media: list[Media], lang: str) -> str:
    """One sentence per medium, numbered per kind, e.g. `Image 1: PNG, 2x3 px, 67 bytes. `."""
    out: list[str] = []
    seen: dict[str, int] = {}
    for item in media:
        seen[item.kind] = seen.get(item.kind, 0) + 1
        label = f"{_NAMES[lang][item.kind]} {seen[item.kind]}"
        if item.url is not None:
            out.append(f"{label}{_COLON}{item.url}。" if lang == "zh" else f"{label}: {item.url}. ")
            continue
        data = item.data or b""
        kind, size = sniff(data)
        if lang == "zh":
            dims = f"{size[0]}x{size[1]} 像素{_COMMA}" if size else ""
            out.append(f"{label}{_COLON}{kind}{_COMMA}{dims}{len(data)} 字节。")
        else:
            dims = f"{size[0]}x{size[1]} px, " if size else ""
            out.append(f"{label}: {kind}, {dims}{len(data)} bytes. ")
    return "".join(out)
