"""The pure parts other tests lean on: predicting answers, reading directives, counting tokens."""

from __future__ import annotations

import pytest

from mock_upstream import expected_chunks, expected_reasoning_chunks, expected_tool_call
from mock_upstream.directives import DirectiveError, Directives, parse
from mock_upstream.prompt import count_tokens, split_tokens


def body(text: str, **fields) -> dict:
    return {"model": "glm-4", "messages": [{"role": "user", "content": text}], **fields}


def test_expected_chunks_is_deterministic_and_token_shaped() -> None:
    chunks = expected_chunks(body("a question"))

    assert chunks == expected_chunks(body("a question"))
    assert 12 <= len(chunks) <= 24
    assert chunks[0][0].isupper()
    assert all(c.startswith(" ") or c == "." for c in chunks[1:])
    assert all(count_tokens(c) == 1 for c in chunks)
    assert count_tokens("".join(chunks)) == len(chunks)


def test_expected_chunks_ignores_directives_and_whitespace_but_not_words() -> None:
    plain = expected_chunks(body("a question #chunks=30"))

    assert expected_chunks(body("a   question #delay=5 #chunks=30")) == plain
    assert expected_chunks(body("#chunks=30\na question #fault=drop")) == plain
    assert expected_chunks(body("another question #chunks=30")) != plain


def test_expected_chunks_reads_only_the_last_user_message() -> None:
    conversation = {
        "model": "glm-4",
        "messages": [
            {"role": "user", "content": "first #chunks=2"},
            {"role": "assistant", "content": "reply #chunks=9"},
            {"role": "user", "content": [{"type": "text", "text": "second #chunks=4"}]},
        ],
    }
    assert expected_chunks(conversation) == expected_chunks(body("second #chunks=4"))
    assert len(expected_chunks(conversation)) == 4


def test_max_tokens_counts_reasoning_first() -> None:
    request = body("why #fault=reasoning #chunks=6", max_tokens=5)
    assert len(expected_reasoning_chunks(request)) == 3
    assert expected_chunks(request) == expected_chunks(body("why #chunks=6"))[:2]


def test_tool_call_answers_have_no_content_and_a_stable_call() -> None:
    request = body("call #fault=tool_call")
    assert expected_chunks(request) == []
    assert expected_tool_call(request) == expected_tool_call(request)
    assert expected_tool_call(body("no tools")) is None
    call = expected_tool_call(request)
    assert call is not None and call["function"]["name"] == "lookup"


def test_parse_reads_every_directive() -> None:
    parsed, text = parse(
        "Hello #fault=reasoning,drop&after=2 #chunks=7 #delay=3 #first=40 #hold=9 #times=1 "
        "#retry_after=2 #stamp world"
    )
    assert text == "Hello world"
    assert parsed == Directives(
        faults=("reasoning", "drop"),
        chunks=7,
        delay_ms=3,
        first_ms=40,
        hold_ms=9,
        after=2,
        times=1,
        retry_after=2,
        stamp=True,
    )


@pytest.mark.parametrize("word", ["#python", "#", "##", "#1", "C#", "a#b=1"])
def test_words_that_only_look_like_directives_stay_text(word: str) -> None:
    parsed, text = parse(f"about {word}")
    assert parsed == Directives() and text == f"about {word}"


@pytest.mark.parametrize(
    "text", ["#unknown=1", "#chunks=-1", "#chunks=1.5", "#fault=", "#fault=drop,length"]
)
def test_bad_directives_raise(text: str) -> None:
    with pytest.raises(DirectiveError):
        parse(text)


@pytest.mark.parametrize(
    "text", ["", "plain words", "CJK 中文 and emoji 😀\r\n\tend  ", "a,b;c...!?", "  lead"]
)
def test_tokens_join_back_to_the_text(text: str) -> None:
    assert "".join(split_tokens(text)) == text


def test_token_counting_is_word_and_character_based() -> None:
    assert count_tokens("Hello, world") == 3
    assert count_tokens("你好") == 2
    assert count_tokens("snake_case_word42") == 1
