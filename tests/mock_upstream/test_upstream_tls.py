"""`python -m mock_upstream --tls-cert --tls-key`: the fake Zhipu over HTTPS, as the real one is."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.local_ca import LocalCA

ROOT = Path(__file__).resolve().parents[2]
KEY = "devid.devsecret"


@pytest.fixture(scope="module")
def ca() -> Iterator[LocalCA]:
    local = LocalCA()
    yield local
    local.close()


@pytest.fixture(scope="module")
def https_upstream(ca: LocalCA) -> Iterator[str]:
    tls = ["--tls-cert", str(ca.cert_chain), "--tls-key", str(ca.key)]
    process = subprocess.Popen(
        [sys.executable, "-m", "mock_upstream", "--port", "0", *tls],
        cwd=ROOT,
        env={**os.environ, "ZHIPU_API_KEY": KEY, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip().removeprefix("mock_upstream ready base_url=")
    finally:
        process.terminate()
        process.wait(10)


def test_it_serves_https_with_the_given_certificate(https_upstream: str, ca: LocalCA) -> None:
    assert https_upstream.startswith("https://127.0.0.1:")
    body = {"model": "glm-4.7", "messages": [{"role": "user", "content": "Hi #chunks=2"}]}
    with httpx.Client(verify=ca.client_context(), timeout=10) as client:
        answer = client.post(
            https_upstream + "/chat/completions",
            json={**body, "stream": True},
            headers={"Authorization": f"Bearer {KEY}"},
        )
    assert answer.status_code == 200 and answer.text.endswith("data: [DONE]\n\n")
    with (
        httpx.Client(verify=ssl.create_default_context(), timeout=10) as untrusting,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        untrusting.post(https_upstream + "/chat/completions", json=body)


def test_a_certificate_without_its_key_is_refused(ca: LocalCA) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mock_upstream", "--port", "0", "--tls-cert", str(ca.cert_chain)],
        cwd=ROOT,
        env={**os.environ, "ZHIPU_API_KEY": KEY, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2 and "--tls-key" in result.stderr
