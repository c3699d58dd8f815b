"""What reading and checking an agent-sized request costs, in this process: the JSON decode
``read_payload`` does, then the front end's reader (Messages or Responses) with the shared
message checks, and the token estimate the Messages stream reports. No upstream, no HTTP.

Bodies of about 1, 2 and 5 MB of Claude-Code- and Codex-shaped sessions
(``devtools/agent_session.py``), read with ``MAX_PROMPT_CHARS`` raised so that each is admitted
(the whole path runs); the time should grow with the size, not faster. Also the default
limits' refusal of the 5 MB one (``prompt_too_long`` comes after the whole reading). Each figure
is the median of a few runs; the peak is tracemalloc's, over the reading (the body excluded).

    python -m bench.validation
"""

from __future__ import annotations

import contextlib
import json
import statistics
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from devtools.agent_session import messages_request, responses_request
from glm_relay.chat.models import ModelSpec
from glm_relay.chat.request import resolve_model
from glm_relay.chat.tokens import estimate_prompt_tokens
from glm_relay.config import Settings
from glm_relay.errors import RelayError
from glm_relay.web.anthropic.request import parse_messages_request
from glm_relay.web.responses.request import read_request

RESULT_CHARS = 9_000
RUNS = 5


def _messages(body: bytes, settings: Settings) -> str:
    payload = json.loads(body.decode("utf-8"))
    call = parse_messages_request(payload, settings, lambda _: None)
    estimate_prompt_tokens(call.chat.messages, call.chat.tools)
    return f"{len(call.chat.messages)} messages"


def _responses(body: bytes, settings: Settings) -> str:
    payload = json.loads(body.decode("utf-8"))
    spec: ModelSpec = resolve_model(settings, payload.get("model"))
    asked = read_request(payload, spec, settings, history=[], seal=None)
    return f"{len(asked.chat.messages)} messages"


def measure(read: Callable[[bytes, Settings], str], body: bytes, settings: Settings) -> list[Any]:
    """Median seconds, peak bytes and the outcome of reading ``body``."""
    times = []
    outcome = ""
    for _ in range(RUNS):
        started = time.perf_counter()
        try:
            outcome = read(body, settings)
        except RelayError as exc:
            outcome = exc.code
        times.append(time.perf_counter() - started)
    tracemalloc.start()
    with contextlib.suppress(RelayError):
        read(body, settings)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return [statistics.median(times), peak, outcome]


def main() -> None:
    roomy = Settings.from_env({}, max_prompt_chars=10**8)
    default = Settings.from_env({})
    builders: dict[str, tuple[Callable[..., dict[str, Any]], Callable[[bytes, Settings], str]]] = {
        "messages": (messages_request, _messages),
        "responses": (responses_request, _responses),
    }
    print("| front end | body | limits | read and checked | peak memory | outcome |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, (build, read) in builders.items():
        for turns in (110, 220, 550):
            body = json.dumps(build(turns=turns, result_chars=RESULT_CHARS)).encode()
            runs = [("raised", roomy)] + ([("default", default)] if turns == 550 else [])
            for label, settings in runs:
                seconds, peak, outcome = measure(read, body, settings)
                print(
                    f"| {name} | {len(body) / 1e6:.2f} MB | {label} | {seconds * 1000:.0f} ms "
                    f"| {peak / 1e6:.1f} MB | {outcome} |"
                )


if __name__ == "__main__":
    main()
