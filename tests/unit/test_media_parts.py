"""Media parts in the chat core: text-only measures (prompt length, the quota estimate), the
placeholders conversations store, and the image checks."""

from __future__ import annotations

import struct

import pytest

from glm_relay.chat.media import describe, dimensions
from glm_relay.chat.messages import BASIC_ROLES, MessageRules, parse_messages
from glm_relay.chat.models import CATALOGUE
from glm_relay.chat.request import build_chat
from glm_relay.config import Settings
from glm_relay.errors import RelayError
from glm_relay.state.ledger import prompt_tokens_to_reserve
from glm_relay.upstream.translate import zhipu_body
from tests.support.images import b64, data_url, image_part, png

SETTINGS = Settings.from_env({}, max_prompt_chars=100)
RULES = MessageRules(roles=BASIC_ROLES)
VISION = CATALOGUE["glm-4.6v"]


def chat_with(*parts: dict[str, object], text: str = "What is this?"):
    content = [{"type": "text", "text": text}, *parts]
    messages = parse_messages([{"role": "user", "content": content}], SETTINGS, RULES, VISION)
    return build_chat(SETTINGS, VISION, messages, {"max_tokens": 10})


def test_an_image_counts_as_no_text_for_limits_and_the_quota_estimate() -> None:
    image = png(100, 100, noise=True)  # 30 KB of base64, far over MAX_PROMPT_CHARS=100

    chat = chat_with(image_part(data_url(image)))

    assert chat.has_media
    assert chat.prompt_chars == len("What is this?")
    assert prompt_tokens_to_reserve(chat) == len("What is this?") // 2 + 1
    with pytest.raises(RelayError) as raised:
        chat_with(image_part(data_url(image)), text="x" * 101)
    assert raised.value.code == "prompt_too_long"


def test_placeholders_name_the_type_and_size_or_the_url() -> None:
    image = png(3, 2)
    content = [
        {"type": "text", "text": "Compare"},
        image_part(data_url(image)),
        image_part(b64(image)),  # bare base64: the type read from the bytes
        image_part("https://img.example/cat.png"),
        {"type": "file", "file": {"file_data": "data:application/pdf;base64," + b64(b"%PDF-1")}},
    ]

    assert describe(content) == (
        f"Compare\n[image: image/png, {len(image)} bytes]\n[image: image/png, {len(image)} bytes]"
        "\n[image: https://img.example/cat.png]\n[file: application/pdf, 6 bytes]"
    )


def test_only_image_data_urls_lose_their_prefix_upstream() -> None:
    pdf = "data:application/pdf;base64," + b64(b"%PDF-1")
    chat = chat_with(image_part(data_url(png(1, 1))))
    file_chat = chat_with({"type": "file", "file": {"file_data": pdf}})

    (message,) = zhipu_body(chat, "r")["messages"]
    (file_message,) = zhipu_body(file_chat, "r")["messages"]

    assert message["content"][1]["image_url"]["url"] == b64(png(1, 1))
    assert file_message["content"][1] == {"type": "file", "file": {"file_data": pdf}}
    assert chat.messages[0]["content"][1]["image_url"]["url"].startswith("data:image/png")


def test_dimensions_of_png_gif_and_jpeg() -> None:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, 480, 640, 1) + b"\x01\x11\x00"
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"

    assert dimensions(png(7, 5)) == (7, 5)
    assert dimensions(b"GIF89a" + struct.pack("<HH", 9, 4)) == (9, 4)
    assert dimensions(b"\xff\xd8" + app0 + sof + b"\xff\xd9") == (640, 480)
    assert dimensions(b"not an image") is None
