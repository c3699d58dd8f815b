"""Stored responses larger than one DynamoDB item, through openai-python: kept whole and continued
with ``previous_response_id``; and one over the ceiling, which says ``store: false``, is logged,
and is named as too large by a later reference instead of a 404."""

from __future__ import annotations

import base64
import logging
import os
import zlib

import openai
import pytest
from openai import OpenAI

from glm_relay.state import responses as response_store


def random_text(random_bytes: int) -> str:
    """Base64 of random bytes: text that compresses to about three quarters of its length."""
    return base64.b64encode(os.urandom(random_bytes)).decode()


def test_a_conversation_larger_than_one_item_is_stored_and_continued(oai: OpenAI, sent) -> None:
    text = random_text(420_000)  # 560,000 characters: within MAX_PROMPT_CHARS and the body limit
    assert len(zlib.compress(text.encode())) > response_store.MAX_PART_BYTES

    first = oai.responses.create(model="glm-4-flash", input=f"Remember this: {text}")
    assert first.store is True
    assert oai.responses.retrieve(first.id).output_text == first.output_text
    with oai.responses.stream(
        model="glm-4-flash", previous_response_id=first.id, input="What did I ask you?"
    ) as stream:
        second = stream.get_final_response()
    third = oai.responses.create(
        model="glm-4-flash", previous_response_id=second.id, input="And before that?"
    )

    asked, followed, last = sent()
    assert asked["messages"] == [{"role": "user", "content": f"Remember this: {text}"}]
    assert followed["messages"][0] == asked["messages"][0]
    assert followed["messages"][1]["content"] == first.output_text
    assert followed["messages"][2:] == [{"role": "user", "content": "What did I ask you?"}]
    assert last["messages"][:3] == followed["messages"]
    assert last["messages"][3]["content"] == second.output_text
    assert last["messages"][4:] == [{"role": "user", "content": "And before that?"}]
    assert third.store is True and third.status == "completed"


def test_a_response_over_the_ceiling_says_so_now_and_when_referred_to(
    oai: OpenAI, sent, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    monkeypatch.setattr(response_store, "MAX_STORED_BYTES", 200_000)
    text = random_text(300_000)

    created = oai.responses.create(model="glm-4-flash", input=f"Remember this: {text}")

    assert created.store is False and created.status == "completed"
    (warning,) = [r for r in caplog.records if r.getMessage() == "response not stored: too large"]
    assert warning.response_id == created.id and warning.compressed_bytes > 200_000
    assert text[:100] not in caplog.text
    with pytest.raises(openai.BadRequestError) as refused:
        oai.responses.create(
            model="glm-4-flash", previous_response_id=created.id, input="What did I ask you?"
        )
    assert refused.value.code == "invalid_parameter"
    assert refused.value.param == "previous_response_id"
    assert refused.value.body["message"] == (
        f"response {created.id} was too large to store; send the conversation's items with "
        "store: false instead"
    )
    with pytest.raises(openai.BadRequestError) as read:
        oai.responses.retrieve(created.id)
    assert read.value.code == "invalid_parameter"
    assert len(sent()) == 1  # the refused follow-up never reached the upstream
