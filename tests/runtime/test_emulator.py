"""The runtime under the real Runtime Interface Emulator: byte-exact framing, many invocations."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.emulator import Emulator, parse_framed

from .support import HANDLERS, ROOT

NUL8 = b"\x00" * 8
EVENTS = sorted((ROOT / "events").glob("**/*.json"))
REAL_HANDLER_MODULE = ROOT / "functions" / "relay" / "glm_relay" / "handler.py"
TEST_HANDLER_ENV = {"PYTHONPATH": str(ROOT)}  # tests.runtime.handlers lives outside the package


@pytest.fixture(scope="module")
def echo_emulator() -> Iterator[Emulator]:
    with Emulator(env={**TEST_HANDLER_ENV, "_HANDLER": f"{HANDLERS}.echo"}) as emulator:
        yield emulator


def test_emulator_returns_prelude_eight_nuls_and_body_byte_for_byte(
    echo_emulator: Emulator,
) -> None:
    raw = echo_emulator.invoke(
        {
            "status": 200,
            "headers": {"content-type": "text/event-stream", "cache-control": "no-cache"},
            "cookies": ["session=abc; HttpOnly"],
            "frames": ["event: meta\ndata: {}\n\n", "data: \u4f60\u597d\n\n"],
        }
    )

    assert raw == (
        b'{"statusCode":200,"headers":{"content-type":"text/event-stream",'
        b'"cache-control":"no-cache"},"cookies":["session=abc; HttpOnly"]}'
        + NUL8
        + b"event: meta\ndata: {}\n\n"
        + "data: \u4f60\u597d\n\n".encode()
    )


def test_one_emulator_run_serves_several_invocations_from_one_runtime_process() -> None:
    with Emulator(env={**TEST_HANDLER_ENV, "_HANDLER": f"{HANDLERS}.identity"}) as emulator:
        payloads = [json.loads(parse_framed(emulator.invoke({"n": n})).body) for n in range(3)]

    assert [p["event"] for p in payloads] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [p["served"] for p in payloads] == [1, 2, 3]
    assert len({p["pid"] for p in payloads}) == 1
    assert all(p["same_loop"] for p in payloads)
    assert len({p["request_id"] for p in payloads}) == 3


def test_a_body_with_nul_bytes_survives_framing(echo_emulator: Emulator) -> None:
    framed = parse_framed(echo_emulator.invoke({"frames": ["a\u0000" * 8, "b"]}))

    assert framed.status_code == 200
    assert framed.body == b"a\x00" * 8 + b"b"


def test_handler_error_under_the_emulator_comes_back_as_the_error_json() -> None:
    env = {**TEST_HANDLER_ENV, "_HANDLER": f"{HANDLERS}.fails_in_handle"}
    with Emulator(env=env) as emulator:
        raw = emulator.invoke({})

    assert json.loads(raw) == {"errorType": "ValueError", "errorMessage": "no route for this event"}


def test_parse_framed_rejects_a_response_without_the_delimiter() -> None:
    with pytest.raises(ValueError, match="8-NUL"):
        parse_framed(b'{"statusCode":200}' + b"\x00" * 7 + b"body")


def test_parse_framed_splits_at_the_first_delimiter() -> None:
    framed = parse_framed(b'{"statusCode":204,"headers":{},"cookies":["a=1"]}' + NUL8 + NUL8)

    assert framed.status_code == 204
    assert framed.headers == {}
    assert framed.cookies == ["a=1"]
    assert framed.body == NUL8


def test_cli_prints_prelude_visible_delimiter_and_body(tmp_path: Path) -> None:
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"frames": ["data: hi\n\n"]}))

    result = subprocess.run(
        [
            *(sys.executable, "-m", "devtools.emulator", "--event", str(event)),
            *("--env", f"_HANDLER={HANDLERS}.echo", "--env", f"PYTHONPATH={ROOT}"),
            "--no-backends",
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout == (
        b'{"statusCode":200,"headers":{},"cookies":[]}\n' + b"\\0" * 8 + b"\ndata: hi\n\n\n"
    )


@pytest.fixture(scope="module")
def real_emulator(request: pytest.FixtureRequest) -> Iterator[Emulator]:
    """The real handler under the emulator, with the environment of tests/conftest.py's
    ``relay_env`` fixture (session scope, ``dict[str, str]``: fake upstream and moto endpoints)."""
    if not REAL_HANDLER_MODULE.exists():
        pytest.skip("glm_relay/handler.py does not exist yet")
    try:
        relay_env = request.getfixturevalue("relay_env")
    except pytest.FixtureLookupError:
        pytest.skip("no relay_env fixture (fake upstream + moto environment) in tests/conftest.py")
    with Emulator(env={**relay_env, "_HANDLER": "glm_relay.handler.handle"}) as emulator:
        yield emulator


@pytest.mark.parametrize(
    "event_file",
    EVENTS or [pytest.param(None, marks=pytest.mark.skip(reason="events/ has no *.json yet"))],
    ids=lambda path: path.name if path else "no-events",
)
def test_event_file_streams_a_framed_response_through_the_real_handler(
    real_emulator: Emulator, event_file: Path
) -> None:
    framed = parse_framed(real_emulator.invoke(event_file))

    assert 200 <= framed.status_code <= 599
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in framed.headers.items())
    assert all(isinstance(cookie, str) for cookie in framed.cookies)
