"""openai-python against ``/v1``: an image_url part reaches a vision model, and the
``web_search`` list comes back where the upstream put it (``model_extra`` in the SDK)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from openai import OpenAI

from devtools.stack import DevStack
from mock_upstream.answer import expected_chunks, expected_text, expected_web_search
from tests.hardening.support import mint
from tests.support.images import b64, data_url, png

SEARCH = {"type": "web_search", "web_search": {"count": 4}}


@pytest.fixture
def oai(stack: DevStack) -> Iterator[OpenAI]:
    """A client of its own caller, with no practical quota (the developer token has one)."""
    token = mint("openai-vision-tests")
    with OpenAI(base_url=stack.url + "/v1", api_key=token, max_retries=0, timeout=30) as client:
        yield client


def test_an_image_url_part_reaches_the_vision_model(oai: OpenAI, sent) -> None:
    image = png(64, 48)

    completion = oai.chat.completions.create(
        model="glm-4.6v-flash",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Describe it #chunks=3"},
                    {"type": "image_url", "image_url": {"url": data_url(image), "detail": "auto"}},
                ],
            }
        ],
        extra_body={"thinking": {"type": "disabled"}},
    )

    (body,) = sent()
    part = body["messages"][0]["content"][1]
    assert part == {"type": "image_url", "image_url": {"url": b64(image)}}
    assert base64.b64decode(part["image_url"]["url"]) == image
    assert completion.choices[0].message.content == expected_text(body)
    assert completion.choices[0].message.content.startswith(f"Image 1: PNG, 64x48 px, {len(image)}")
    assert completion.usage is not None and completion.usage.prompt_tokens > 0


def test_web_search_list_in_the_completion_and_on_its_stream_chunk(oai: OpenAI, sent) -> None:
    messages = [{"role": "user", "content": "Harbour news #chunks=3"}]

    whole = oai.chat.completions.create(model="glm-4-flash", messages=messages, tools=[SEARCH])
    chunks = list(
        oai.chat.completions.create(
            model="glm-4-flash", messages=messages, tools=[SEARCH], stream=True
        )
    )

    first, second = sent()
    assert first["tools"] == [SEARCH]
    assert (whole.model_extra or {})["web_search"] == expected_web_search(first)
    assert whole.choices[0].message.content == expected_text(first)
    carrying = [c for c in chunks if (c.model_extra or {}).get("web_search")]
    assert len(carrying) == 1
    assert carrying[0].model_extra["web_search"] == expected_web_search(second)
    assert carrying[0].choices[0].delta.content == expected_chunks(second)[0]
