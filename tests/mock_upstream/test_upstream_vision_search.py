"""Vision parts described in the answer, and the web_search tool's results and citations."""

from __future__ import annotations

import base64
import json
import struct
import zlib
from typing import Any

import pytest
from upstream_support import body, chunks, content_of, post

from mock_upstream.answer import expected_chunks, expected_text, expected_web_search
from mock_upstream.search import result
from mock_upstream.testing import MockUpstream
from mock_upstream.vision import sniff


def png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\0" + b"\0\0\0" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _vision(text: str, *parts: dict[str, Any], model: str = "glm-4.6v", **fields: Any) -> dict:
    content = [{"type": "text", "text": text}, *parts]
    return body(text, model=model, messages=[{"role": "user", "content": content}], **fields)


def _image(url: str) -> dict[str, Any]:
    return {"type": "image_url", "image_url": {"url": url}}


def test_sniff_reads_type_and_size_from_magic_bytes() -> None:
    assert sniff(png(2, 3)) == ("PNG", (2, 3))
    assert sniff(jpeg(640, 480)) == ("JPEG", (640, 480))
    assert sniff(b"GIF89a" + struct.pack("<HH", 5, 7)) == ("GIF", (5, 7))
    assert sniff(b"RIFF\0\0\0\0WEBPVP8 ") == ("WEBP", None)
    assert sniff(b"%PDF-1.7") == ("PDF", None)
    assert sniff(b"hello") == ("unknown", None)


def test_answer_describes_each_image_then_the_words(upstream: MockUpstream) -> None:
    small, photo = png(2, 3), jpeg(640, 480)
    request = _vision(
        "What is in these? #chunks=3",
        _image(b64(small)),  # as the official SDK sends it: prefix stripped
        _image("data:image/jpeg;base64," + b64(photo)),  # as OpenAI clients send it
        _image("https://img.example/cat.png"),
        {"type": "video_url", "video_url": {"url": "https://v.example/clip.mp4"}},
    )
    response = post(upstream.base_url, request)
    parsed = chunks(response.content)

    text = "".join(content_of(parsed))
    assert text == expected_text(request)
    assert text.startswith(
        f"Image 1: PNG, 2x3 px, {len(small)} bytes. "
        f"Image 2: JPEG, 640x480 px, {len(photo)} bytes. "
        "Image 3: https://img.example/cat.png. "
        "Video 1: https://v.example/clip.mp4. "
    )
    words = expected_chunks(body("What is in these? #chunks=3"))
    assert text.endswith(" " + "".join(words))
    assert upstream.requests()[-1]["body"]["messages"][0]["content"][1] == _image(b64(small))


def test_files_by_url_and_by_data(upstream: MockUpstream) -> None:
    pdf = b"%PDF-1.7 fake"
    request = _vision(
        "Summarise #chunks=1",
        {"type": "file", "file": {"file_url": "https://f.example/a.pdf"}},
        {"type": "file", "file": {"file_data": b64(pdf)}},
        {"type": "file_url", "file_url": {"url": "https://f.example/b.pdf"}},
        model="glm-5.3-flash",
        stream=False,
    )
    answer = post(upstream.base_url, request).json()

    assert answer["choices"][0]["message"]["content"].startswith(
        "File 1: https://f.example/a.pdf. "
        f"File 2: PDF, {len(pdf)} bytes. "
        "File 3: https://f.example/b.pdf. "
    )


def test_chinese_prompt_gets_chinese_descriptions() -> None:
    request = _vision("这是什么 #chunks=2", _image(b64(png(4, 4))))
    assert expected_text(request).startswith(
        f"图片 1\uff1aPNG\uff0c4x4 像素\uff0c{len(png(4, 4))} 字节。"
    )


def test_image_of_exactly_5_mb_is_accepted(upstream: MockUpstream) -> None:
    data = png(1, 1)
    data += b"\0" * (5 * 1024 * 1024 - len(data))
    response = post(upstream.base_url, _vision("big #chunks=1", _image(b64(data)), stream=False))
    assert response.status_code == 200, response.text[:200]


SEARCH = {"type": "web_search", "web_search": {"enable": True, "search_engine": "search_pro"}}


def _search(count: int | None = None, **config: Any) -> dict[str, Any]:
    settings = {**SEARCH["web_search"], **config}
    if count is not None:
        settings["count"] = count
    return {"type": "web_search", "web_search": settings}


def test_stream_carries_web_search_on_the_first_chunk_and_cites_it(
    upstream: MockUpstream,
) -> None:
    request = body("latest news #chunks=3", tools=[_search(count=4)])
    parsed = chunks(post(upstream.base_url, request).content)

    carriers = [i for i, c in enumerate(parsed) if "web_search" in c]
    assert carriers == [0]
    results = parsed[0]["web_search"]
    assert (
        results == expected_web_search(request) == [result(i, "latest news") for i in range(1, 5)]
    )
    assert list(results[0]) == [
        *("title", "link", "content", "media", "icon", "refer", "publish_date"),
    ]
    assert [r["refer"] for r in results] == ["ref_1", "ref_2", "ref_3", "ref_4"]
    assert list(parsed[0]) == ["id", "created", "object", "model", "choices", "web_search"]
    text = "".join(content_of(parsed))
    assert text == expected_text(request)
    assert text.endswith(" [ref_1] [ref_2] [ref_3]")


def test_default_count_is_ten_and_search_query_wins() -> None:
    request = body("hi", tools=[_search(search_query="glm relay")])
    results = expected_web_search(request)
    assert results is not None and len(results) == 10
    assert results[9]["title"] == "Result 10 for glm relay"
    assert results[9]["link"] == "https://search.example/10?q=glm%20relay"


@pytest.mark.parametrize(("at", "carrier"), [(0, 0), (2, 2), (7, 7), (8, 8), (99, 8)])
def test_search_at_moves_the_results_to_a_later_chunk(
    upstream: MockUpstream, at: int, carrier: int
) -> None:
    # 5 words and " [ref_1]" (3 tokens): 8 content chunks, then the last chunk (index 8).
    request = body(f"news #chunks=5 #search_at={at}", tools=[_search(count=1)])
    parsed = chunks(post(upstream.base_url, request).content)

    assert len(parsed) == 9
    assert [i for i, c in enumerate(parsed) if "web_search" in c] == [carrier]
    assert "".join(content_of(parsed)) == expected_text(request)


def test_non_stream_body_has_web_search_at_the_top_level(upstream: MockUpstream) -> None:
    request = body("news #chunks=2", stream=False, tools=[_search(count=2)])
    answer = post(upstream.base_url, request).json()

    assert answer["web_search"] == expected_web_search(request)
    assert len(answer["web_search"]) == 2
    assert answer["choices"][0]["message"]["content"].endswith(" [ref_1] [ref_2]")


def test_disabled_search_and_hidden_results(upstream: MockUpstream) -> None:
    off = body("news #chunks=2", stream=False, tools=[_search(enable=False)])
    hidden = body("news #chunks=2", stream=False, tools=[_search(count=2, search_result=False)])

    off_answer = post(upstream.base_url, off).json()
    assert "web_search" not in off_answer
    assert off_answer["choices"][0]["message"]["content"] == expected_text(body("news #chunks=2"))
    hidden_answer = post(upstream.base_url, hidden).json()
    assert "web_search" not in hidden_answer
    assert hidden_answer["choices"][0]["message"]["content"].endswith(" [ref_1] [ref_2]")


def test_search_with_a_thinking_model_and_json(upstream: MockUpstream) -> None:
    request = body(
        "news #chunks=2",
        model="glm-4.7",
        tools=[_search(count=1)],
        response_format={"type": "json_object"},
    )
    parsed = chunks(post(upstream.base_url, request).content)

    assert "reasoning_content" in parsed[0]["choices"][0]["delta"] and "web_search" in parsed[0]
    answer = json.loads("".join(content_of(parsed)))
    assert answer["answer"].endswith(" [ref_1]")
