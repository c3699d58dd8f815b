"""`POST /api/paas/v4/chat/completions`: from a request to the script of its response.

The checks run in the real service's order (authentication, body, model, messages, fields,
prompt size), then the directives pick faults and timings, then the answer is built.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.types import Receive, Scope, Send

from mock_upstream import directives as directives_mod
from mock_upstream import errors, faults, plan, wire
from mock_upstream.answer import build_answer
from mock_upstream.auth import check_authorization, key_fault_error
from mock_upstream.options import MockOptions
from mock_upstream.prompt import last_user_text
from mock_upstream.recorder import Recorder, RequestRecord
from mock_upstream.responder import Responder
from mock_upstream.validation import parse_body, validate


@dataclass
class MockState:
    """Everything one server instance keeps between requests."""

    options: MockOptions
    recorder: Recorder = field(default_factory=Recorder)
    fail_counter: faults.FailCounter = field(default_factory=faults.FailCounter)

    def clear(self) -> None:
        self.recorder.clear()
        self.fail_counter.clear()


def _logged_body(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return raw.decode("utf-8", "replace")


def _seconds(directive_ms: int | None, default_ms: int) -> float:
    return (default_ms if directive_ms is None else directive_ms) / 1000


def _directives(messages: Any) -> tuple[directives_mod.Directives, str]:
    try:
        return directives_mod.parse(last_user_text(messages))
    except directives_mod.DirectiveError as exc:
        message = f"mock_upstream directive: {exc}"
        raise errors.ZhipuError(400, errors.BAD_PARAMETER, message) from None


def _timing(parsed: directives_mod.Directives, options: MockOptions) -> plan.Timing:
    """Per-request directives first, then the server-wide settings."""
    return plan.Timing(
        first_s=_seconds(parsed.first_ms, options.first_token_ms),
        delay_s=_seconds(parsed.delay_ms, options.chunk_delay_ms),
        slow_headers_s=_seconds(parsed.hold_ms, options.slow_headers_ms),
        stall_s=_seconds(parsed.hold_ms, options.stall_ms),
    )


class ChatCompletions:
    """The chat endpoint as a plain ASGI app, so its response can be a `Responder`."""

    def __init__(self, state: MockState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            raw = await request.body()
        except ClientDisconnect:
            return
        headers: dict[str, str] = {}
        for key, value in request.headers.items():
            headers[key] = f"{headers[key]}, {value}" if key in headers else value
        record = self.state.recorder.new(
            request.method, request.url.path, headers, _logged_body(raw)
        )
        steps, streaming = self._decide(request.headers.get("authorization"), raw, record)
        await Responder(steps, self.state.recorder, record, streaming)(scope, receive, send)

    def _decide(
        self, authorization: str | None, raw: bytes, record: RequestRecord
    ) -> tuple[Iterator[plan.Step], bool]:
        options = self.state.options
        auth = check_authorization(authorization, options)
        record.authorization = authorization
        record.auth, record.jwt_claims, record.jwt_header = auth.kind, auth.claims, auth.header
        record.key_id = auth.key_id
        try:
            if auth.error is not None:
                raise auth.error
            key_fault = options.key_faults.get(auth.key_id or "")
            if key_fault is not None:
                raise key_fault_error(key_fault, options.retry_after)
            body = parse_body(raw)
            record.stream = body.get("stream") is True
            chat = validate(body, options)
            parsed, text = _directives(chat.messages)
            record.directives = parsed.as_dict()
            failing = self.state.fail_counter.should_fail(chat.messages, parsed.times)
            fault_set = faults.resolve(parsed.faults, failing)
            record.faults = fault_set.names()
            timing = _timing(parsed, options)
            wait_s = timing.slow_headers_s if fault_set.slow_headers else 0.0
            if fault_set.http is not None:
                numeric = "numeric_code" in fault_set.shapes
                return self._refusal(fault_set.http, parsed, record, wait_s, numeric), False
            try:
                answer = build_answer(body, parsed, text)
            except directives_mod.DirectiveError as exc:
                raise errors.ZhipuError(
                    400, errors.BAD_PARAMETER, f"mock_upstream directive: {exc}"
                ) from None
            request_id = body.get("request_id")
            identity = plan.Identity(
                wire.completion_id(),
                int(time.time()),
                chat.model,
                request_id if isinstance(request_id, str) else None,
            )
            if chat.stream:
                return plan.stream_steps(answer, fault_set, timing, identity, parsed.after), True
            return plan.completion_steps(answer, fault_set, timing, identity, parsed.after), False
        except errors.ZhipuError as error:
            record.error_code = error.code
            return plan.error_steps(error), False

    def _refusal(
        self,
        fault: faults.HttpFault,
        parsed: directives_mod.Directives,
        record: RequestRecord,
        wait_s: float,
        numeric: bool,
    ) -> Iterator[plan.Step]:
        # An explicit #retry_after applies to any refusal; the server-wide default only to the
        # ones where waiting helps (rate limit, unavailable).
        retry_after = parsed.retry_after
        if retry_after is None and fault.retry_after:
            retry_after = self.state.options.retry_after
        headers = {} if retry_after is None else {"retry-after": str(retry_after)}
        record.error_code = fault.code
        return plan.error_steps(
            errors.ZhipuError(fault.status, fault.code, fault.message, headers), wait_s, numeric
        )
