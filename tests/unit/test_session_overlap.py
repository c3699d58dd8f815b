"""ChatService.start with fake roles: the order of quota, history and upstream, and what is
cleaned up when either side fails."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from glm_relay.chat.request import ChatRequest
from glm_relay.chat.session import OVERLAP_MAX_PROMPT_CHARS, ChatService
from glm_relay.config import Settings
from glm_relay.errors import ErrorCode, RelayError

REFUSED = RelayError(ErrorCode.QUOTA_EXCEEDED, "used up")


class FakeStream:
    attempts = 1

    def __init__(self) -> None:
        self.closed = False

    async def aclose(self) -> None:
        self.closed = True


class FakeUpstream:
    """Opens after ``delay`` seconds (or fails with ``error``); logs what happened when."""

    def __init__(self, log: list[str], delay: float = 0.0, error: Exception | None = None) -> None:
        self.log, self.delay, self.error = log, delay, error
        self.stream = FakeStream()

    async def open_stream(
        self, chat: ChatRequest, *, request_id: str, deadline: float, on_sent: Any = None
    ) -> Any:
        self.log.append(f"upstream sent ({len(chat.messages)} messages)")
        if on_sent is not None:
            on_sent()
        try:
            await asyncio.sleep(self.delay)
        except asyncio.CancelledError:
            self.log.append("upstream cancelled")
            raise
        if self.error is not None:
            raise self.error
        self.log.append("upstream open")
        return self.stream


class FakeLedger:
    def __init__(self, log: list[str], delay: float = 0.0, refuse: bool = False) -> None:
        self.log, self.delay, self.refuse = log, delay, refuse

    async def with_history(self, chat: ChatRequest, owner: str) -> ChatRequest:
        await asyncio.sleep(0.01)
        self.log.append("history read")
        return ChatRequest(chat.model, [{"role": "user", "content": "before"}, *chat.messages], 10)

    def check_affordable(self, claims: Any, chat: ChatRequest) -> int:
        return 0

    async def admit(self, claims: Any, chat: ChatRequest, prompt: int) -> Any:
        self.log.append("quota asked")
        await asyncio.sleep(self.delay)
        if self.refuse:
            self.log.append("quota refused")
            raise REFUSED
        self.log.append("quota granted")
        return "reservation"

    async def create(self, owner: str) -> str:
        return "c" * 32

    async def settle(self, claims: Any, admission: Any, outcome: Any) -> None:
        self.log.append(f"settled {admission} {outcome}")

    async def save_turn(self, *args: Any) -> None:
        pass


def chat(conversation: str | None = None) -> ChatRequest:
    return ChatRequest(
        "glm-4-flash", [{"role": "user", "content": "hi"}], 10, None, None, conversation
    )


async def start(
    upstream: FakeUpstream, ledger: FakeLedger, conversation: str | None = None, **kw: Any
) -> Any:
    service = ChatService(Settings.from_env({}), upstream=upstream, ledger=ledger, **kw)
    return await service.start(chat(conversation), request_id="r", remaining_ms=30_000, claims=None)


async def test_the_upstream_request_is_sent_while_the_quota_decides() -> None:
    log: list[str] = []
    upstream = FakeUpstream(log, delay=0.02)
    session = await start(upstream, FakeLedger(log, delay=0.05))
    assert session.upstream is upstream.stream
    assert log == ["upstream sent (1 messages)", "quota asked", "upstream open", "quota granted"]


async def test_a_follow_up_reads_its_history_before_anything_is_sent() -> None:
    log: list[str] = []
    await start(FakeUpstream(log), FakeLedger(log, delay=0.01), conversation="a" * 32)
    assert log[:3] == ["history read", "upstream sent (2 messages)", "quota asked"]


@pytest.mark.parametrize("upstream_delay", [0.0, 0.2], ids=["already open", "in flight"])
async def test_a_refusal_closes_the_upstream_request(upstream_delay: float) -> None:
    log: list[str] = []
    upstream = FakeUpstream(log, delay=upstream_delay)
    with pytest.raises(RelayError) as refused:
        await start(upstream, FakeLedger(log, delay=0.05, refuse=True))
    assert refused.value is REFUSED
    if upstream_delay:
        assert log[-1] == "upstream cancelled"
    else:
        assert upstream.stream.closed


async def test_an_upstream_failure_gives_the_reservation_back() -> None:
    log: list[str] = []
    failure = RelayError(ErrorCode.UPSTREAM_UNAVAILABLE, "down")
    with pytest.raises(RelayError) as failed:
        await start(FakeUpstream(log, error=failure), FakeLedger(log, delay=0.02))
    assert failed.value is failure
    assert log[-1] == "settled reservation None"


async def test_a_long_prompt_is_sent_only_once_the_quota_said_yes() -> None:
    log: list[str] = []
    long = ChatRequest(
        "glm-4-flash", [{"role": "user", "content": "x" * (OVERLAP_MAX_PROMPT_CHARS + 1)}], 10
    )
    service = ChatService(
        Settings.from_env({}), upstream=FakeUpstream(log), ledger=FakeLedger(log, delay=0.01)
    )
    await service.start(long, request_id="r", remaining_ms=30_000, claims=None)
    assert log == ["quota asked", "quota granted", "upstream sent (1 messages)", "upstream open"]


async def test_without_overlap_nothing_is_sent_before_the_quota_said_yes() -> None:
    log: list[str] = []
    with pytest.raises(RelayError):
        await start(FakeUpstream(log), FakeLedger(log, delay=0.01, refuse=True), overlap=False)
    assert log == ["quota asked", "quota refused"]
