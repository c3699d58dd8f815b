"""Images, video and files through the local function URL: what reaches the upstream, byte for
byte; what is refused before it (text models, oversized images and bodies); what conversations
keep instead of the bytes."""

from __future__ import annotations

import base64
import json
import uuid
from typing import Any

import httpx
import pytest

from devtools.events import rest_api_event
from devtools.stack import DevStack
from glm_relay.runtime import InvocationContext, now_ms
from mock_upstream.answer import expected_text
from tests.hardening.support import mint, serving, variant_app
from tests.support.images import b64, data_url, image_part, png
from tests.support.sse_client import StreamResult, read_stream
from tests.support.upstream import upstream_bodies

pytestmark = pytest.mark.usefixtures("upstream_log")
VISION = "glm-4.6v-flash"
QUESTION = "What is in this picture? #chunks=4"
# Its own caller, with no practical quota: the session's developer token has a daily one.
TOKEN = mint("vision-tests")


def post(stack: DevStack, client: httpx.Client, body: dict[str, Any]) -> StreamResult:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    return read_stream(client, "POST", f"{stack.url}/chat", json=body, headers=headers)


def ask(*parts: dict[str, Any], model: str = VISION) -> dict[str, Any]:
    content = [{"type": "text", "text": QUESTION}, *parts]
    return {"model": model, "thinking": "off", "messages": [{"role": "user", "content": content}]}


def test_an_image_reaches_a_vision_model_intact(stack, client) -> None:
    image = png(160, 120, noise=True)  # about 58 KB
    body = ask(image_part(data_url(image)))

    result = post(stack, client, body)

    assert result.status == 200, result.raw[:300]
    (upstream,) = upstream_bodies(stack, client)
    text_part, image_sent = upstream["messages"][0]["content"]
    assert text_part == {"type": "text", "text": QUESTION}
    # As the official SDK sends it: the data URL's prefix cut off, the bytes unchanged.
    assert image_sent == {"type": "image_url", "image_url": {"url": b64(image)}}
    assert base64.b64decode(image_sent["image_url"]["url"]) == image
    assert result.text == expected_text(upstream)
    assert result.text.startswith(f"Image 1: PNG, 160x120 px, {len(image)} bytes.")
    assert result.terminal.event == "done"


def test_video_file_and_url_parts_are_passed_as_given(stack, client) -> None:
    video = {"type": "video_url", "video_url": {"url": "https://v.example/clip.mp4"}}
    photo = image_part("https://img.example/cat.png")
    pdf = {"type": "file", "file": {"file_data": b64(b"%PDF-1.7 tiny"), "filename": "a.pdf"}}

    first = post(stack, client, ask(photo, video))
    second = post(stack, client, ask(pdf))

    one, two = upstream_bodies(stack, client)
    assert one["messages"][0]["content"][1:] == [photo, video]
    assert two["messages"][0]["content"][1:] == [
        {"type": "file", "file": {"file_data": b64(b"%PDF-1.7 tiny")}}
    ]
    assert first.text.startswith(
        "Image 1: https://img.example/cat.png. Video 1: https://v.example/clip.mp4."
    )
    assert second.text.startswith("File 1: PDF, 13 bytes.")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        # A text model: refused, whatever the part holds.
        (ask(image_part(data_url(png(2, 2))), model="glm-4-flash"), 400, "unsupported_content"),
        (
            ask(image_part("https://img.example/cat.png"), model="glm-4.7"),
            400,
            "unsupported_content",
        ),
        # Over 6000 px on a side.
        (ask(image_part(data_url(png(6001, 1)))), 413, "media_too_large"),
        # Files do not share a message with images.
        (
            ask(
                image_part("https://i.example/a.png"),
                {"type": "file", "file": {"file_url": "https://f.example/a.pdf"}},
            ),
            400,
            "unsupported_content",
        ),
        (ask(image_part("data:image/png;base64,@@@")), 400, "invalid_messages"),
        (ask(image_part("ftp://img.example/cat.png")), 400, "invalid_messages"),
        (
            ask({"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}),
            400,
            "unsupported_content",
        ),
    ],
    ids=[
        "text-model-data",
        "text-model-url",
        "too-many-pixels",
        "file-with-image",
        "bad-base64",
        "ftp",
        "audio",
    ],
)
def test_refused_before_the_upstream(stack, client, body, status, code) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    chat = client.post(f"{stack.url}/chat", json=body, headers=headers)
    v1 = client.post(f"{stack.url}/v1/chat/completions", json=body, headers=headers)

    for response in (chat, v1):
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code
    assert upstream_bodies(stack, client) == []


def test_a_body_over_the_vision_limit_is_413_with_a_code(stack, client) -> None:
    image = png(1200, 1200, noise=True)  # 4.3 MB: a 5.8 MB data URL, a body just over 6,000,000
    body = ask(image_part(data_url(image)))
    body["messages"][0]["content"][0]["text"] += " " * (6_000_100 - len(json.dumps(body)))

    response = client.post(
        f"{stack.url}/chat", json=body, headers={"Authorization": f"Bearer {TOKEN}"}
    )

    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "body_too_large"
    assert error["vision_limit_bytes"] == 6_000_000
    assert upstream_bodies(stack, client) == []


def test_a_body_over_the_function_urls_limit_gets_its_413_not_a_reset(stack, client) -> None:
    body = json.dumps(ask(image_part(data_url(b"\x89PNG\r\n\x1a\n" + bytes(4_800_000)))))
    assert len(body) > 6 * 1024 * 1024

    response = client.post(
        f"{stack.url}/chat", content=body, headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 413
    assert "too large" in response.json()["Message"]
    assert upstream_bodies(stack, client) == []


def test_a_larger_vision_limit_lets_media_bodies_past_max_body_bytes(stack, client) -> None:
    """``MAX_VISION_BODY_BYTES`` above ``MAX_BODY_BYTES``: a body with an image may be that
    large, a text body still only ``MAX_BODY_BYTES``."""
    app = variant_app(stack, max_body_bytes=64 * 1024, max_vision_body_bytes=6_000_000)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    text = {"model": VISION, "messages": [{"role": "user", "content": "hi" + " " * 70_000}]}
    picture = png(160, 120, noise=True)
    image = ask(image_part(data_url(picture)))
    assert len(json.dumps(image)) > 64 * 1024

    with serving(app, stack.url_config()) as url:
        refused = client.post(f"{url}/chat", json=text, headers=headers)
        admitted = read_stream(client, "POST", f"{url}/chat", json=image, headers=headers)

    assert refused.status_code == 413
    error = refused.json()["error"]
    assert (error["code"], error["limit_bytes"], error["vision_limit_bytes"]) == (
        "body_too_large",
        64 * 1024,
        6_000_000,
    )
    assert admitted.status == 200 and admitted.terminal.event == "done"
    (upstream,) = upstream_bodies(stack, client)
    assert upstream["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": b64(picture)},
    }


async def test_an_image_over_5_mb_is_413_where_the_front_door_takes_it(stack, client) -> None:
    """Behind the REST API (10 MB payloads) with a larger body limit, a 5 MB image is the
    upstream's limit that applies."""
    app = variant_app(stack, max_vision_body_bytes=9_000_000)
    image = b"\x89PNG\r\n\x1a\n" + bytes(5 * 1024 * 1024)
    event = rest_api_event(
        "POST",
        "/chat",
        {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        json.dumps(ask(image_part(data_url(image)))).encode(),
    )
    context = InvocationContext(aws_request_id=str(uuid.uuid4()), deadline_ms=now_ms() + 30_000)

    response = await app.handle(event, context)
    body = b"".join([frame async for frame in response.body])
    await app.services.zhipu.aclose()

    assert response.status_code == 413
    error = json.loads(body)["error"]
    assert error["code"] == "media_too_large"
    assert error["limit_bytes"] == 5 * 1024 * 1024
    assert upstream_bodies(stack, client) == []


def test_a_conversation_stores_a_placeholder_not_the_image(stack, client) -> None:
    image = png(40, 30)
    body = {**ask(image_part(data_url(image))), "conversation": "new"}

    result = post(stack, client, body)

    conversation = result.events[0].json["conversation_id"]
    history = client.get(
        f"{stack.url}/conversations/{conversation}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    ).json()
    (turn,) = history["turns"]
    assert turn["question"] == f"{QUESTION}\n[image: image/png, {len(image)} bytes]"
    assert turn["answer"] == result.text
    assert b64(image)[:40] not in json.dumps(history)
