"""``python -m glm_relay`` as an operator runs it: a real subprocess, Secrets Manager on moto."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from access_support import SIGNING_KEY

from devtools.stack import MotoBackend
from glm_relay.access import AccessDenied, TokenLimits, mint_access_token, verify_access_token

REPO = Path(__file__).resolve().parents[2]
SECRET_IN_AWS = "aws-held-signing-key-9f8e7d6c5b4a39281706abcdef"


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    moto = MotoBackend()
    try:
        yield moto.start()
    finally:
        moto.stop()


@pytest.fixture
def aws_secret(moto_endpoint: str) -> str:
    """A fresh secret on the moto server holding SECRET_IN_AWS; returns its name."""
    name = f"glm-relay/access-{uuid.uuid4().hex[:8]}"
    client = boto3.client(
        "secretsmanager",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    client.create_secret(Name=name, SecretString=SECRET_IN_AWS)
    return name


@pytest.fixture
def run_cli(tmp_path: Path, moto_endpoint: str):
    """Run ``python -m glm_relay ARGS`` with a clean environment plus ``env``."""

    def run(*args: str, env: dict[str, str] | None = None, stdin: str = "") -> Run:
        base = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(tmp_path),
            "PYTHONPATH": str(REPO / "functions" / "relay"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_ENDPOINT_URL_SECRETS_MANAGER": moto_endpoint,
        }
        completed = subprocess.run(
            [sys.executable, "-m", "glm_relay", *args],
            env={**base, **(env or {})},
            cwd=tmp_path,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
        )
        for secret in (SIGNING_KEY, SECRET_IN_AWS, *(env or {}).values()):
            if len(secret) >= 16:
                assert secret not in completed.stdout
                assert secret not in completed.stderr
        return Run(completed.returncode, completed.stdout, completed.stderr)

    return run


def only_token(run: Run) -> str:
    """The token printed by a successful run; nothing else may be on stdout."""
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 1 and run.stdout == lines[0] + "\n"
    return lines[0]


# --- key sources ---------------------------------------------------------------------------------


def test_token_from_env_secret_verifies_with_its_limits(run_cli):
    run = run_cli(
        "token",
        "--sub",
        "alice",
        "--ttl",
        "3600",
        "--requests-per-day",
        "100",
        "--tokens-per-day",
        "20000",
        "--max-tokens",
        "512",
        env={"ACCESS_TOKEN_SECRET": SIGNING_KEY},
    )

    claims = verify_access_token(only_token(run), SIGNING_KEY)
    assert claims.sub == "alice"
    assert claims.limits == TokenLimits(requests_per_day=100, tokens_per_day=20000, max_tokens=512)
    assert run.stderr == ""


def test_token_carries_spend_budgets(run_cli):
    run = run_cli(
        "token",
        *("--sub", "alice", "--spend-per-day", "0.5", "--spend-per-month", "10"),
        env={"ACCESS_TOKEN_SECRET": SIGNING_KEY},
    )

    claims = verify_access_token(only_token(run), SIGNING_KEY)
    assert claims.limits == TokenLimits(spend_per_day=0.5, spend_per_month=10.0)


def test_ttl_defaults_to_one_hour(run_cli):
    before = time.time()
    run = run_cli("token", "--sub", "alice", env={"ACCESS_TOKEN_SECRET": SIGNING_KEY})

    expires_at = verify_access_token(only_token(run), SIGNING_KEY).expires_at
    assert before + 3600 - 2 <= expires_at <= time.time() + 3600


def test_signing_key_env_names_the_variable_and_wins(run_cli):
    other = "operator-chosen-key-0123456789-0123456789"
    run = run_cli(
        "token",
        "--sub",
        "bob",
        "--signing-key-env",
        "MY_RELAY_KEY",
        env={"MY_RELAY_KEY": other, "ACCESS_TOKEN_SECRET": SIGNING_KEY},
    )

    assert verify_access_token(only_token(run), other).sub == "bob"


def test_signing_key_env_that_is_unset_is_an_error_not_a_fallback(run_cli):
    run = run_cli(
        "token",
        "--sub",
        "bob",
        "--signing-key-env",
        "MISSING_KEY",
        env={"ACCESS_TOKEN_SECRET": SIGNING_KEY},
    )

    assert run.returncode == 2
    assert run.stdout == ""
    assert "MISSING_KEY" in run.stderr


def test_secret_id_fetches_the_key_from_secrets_manager(run_cli, aws_secret):
    run = run_cli("token", "--sub", "carol", "--ttl", "60", "--secret-id", aws_secret)

    assert verify_access_token(only_token(run), SECRET_IN_AWS).sub == "carol"


def test_secret_id_from_environment_fetches_the_key(run_cli, aws_secret):
    run = run_cli("token", "--sub", "dave", env={"ACCESS_TOKEN_SECRET_ID": aws_secret})

    assert verify_access_token(only_token(run), SECRET_IN_AWS).sub == "dave"


def test_explicit_secret_id_wins_over_an_exported_plain_secret(run_cli, aws_secret):
    run = run_cli(
        "token",
        "--sub",
        "erin",
        "--secret-id",
        aws_secret,
        env={"ACCESS_TOKEN_SECRET": SIGNING_KEY},
    )

    token = only_token(run)
    assert verify_access_token(token, SECRET_IN_AWS).sub == "erin"
    with pytest.raises(AccessDenied, match="bad signature"):
        verify_access_token(token, SIGNING_KEY)


def test_plain_secret_wins_over_secret_id_from_environment(run_cli, aws_secret):
    run = run_cli(
        "token",
        "--sub",
        "frank",
        env={"ACCESS_TOKEN_SECRET": SIGNING_KEY, "ACCESS_TOKEN_SECRET_ID": aws_secret},
    )

    assert verify_access_token(only_token(run), SIGNING_KEY).sub == "frank"


def test_unknown_secret_id_fails_with_the_aws_error_code(run_cli):
    run = run_cli("token", "--sub", "alice", "--secret-id", "glm-relay/does-not-exist")

    assert run.returncode == 1
    assert run.stdout == ""
    assert "ResourceNotFoundException" in run.stderr
    assert "glm-relay/does-not-exist" in run.stderr
    assert "Traceback" not in run.stderr


def test_no_key_source_exits_2_and_says_how_to_give_one(run_cli):
    run = run_cli("token", "--sub", "alice")

    assert run.returncode == 2
    assert run.stdout == ""
    for hint in (
        "--signing-key-env",
        "--secret-id",
        "ACCESS_TOKEN_SECRET",
        "ACCESS_TOKEN_SECRET_ID",
    ):
        assert hint in run.stderr


def test_empty_plain_secret_counts_as_no_source(run_cli):
    run = run_cli("token", "--sub", "alice", env={"ACCESS_TOKEN_SECRET": ""})

    assert run.returncode == 2
    assert "no signing key" in run.stderr


def test_both_explicit_sources_at_once_is_a_usage_error(run_cli, aws_secret):
    args = ("--sub", "alice", "--signing-key-env", "K", "--secret-id", aws_secret)
    run = run_cli("token", *args, env={"K": SIGNING_KEY})

    assert run.returncode == 2
    assert run.stdout == ""


def test_key_too_short_is_refused_without_echoing_it(run_cli):
    short = "tooshort-key-abc"
    run = run_cli("token", "--sub", "alice", env={"ACCESS_TOKEN_SECRET": short})

    assert run.returncode == 1
    assert run.stdout == ""
    assert "32 bytes" in run.stderr
    assert short not in run.stderr


# --- arguments -----------------------------------------------------------------------------------


def test_help_lists_the_subcommands(run_cli):
    run = run_cli("--help")

    assert run.returncode == 0
    assert "token" in run.stdout and "verify" in run.stdout


def test_no_subcommand_is_a_usage_error(run_cli):
    run = run_cli(env={"ACCESS_TOKEN_SECRET": SIGNING_KEY})

    assert run.returncode == 2
    assert run.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ("--ttl", "60"),
        ("--sub", "", "--ttl", "60"),
        ("--sub", "x" * 129),
        ("--sub", "alice", "--ttl", "0"),
        ("--sub", "alice", "--ttl", "soon"),
        ("--sub", "alice", "--max-tokens", "-1"),
        ("--sub", "alice", "--requests-per-day", "1.5"),
    ],
    ids=[
        "no-sub",
        "empty-sub",
        "long-sub",
        "zero-ttl",
        "text-ttl",
        "negative-limit",
        "float-limit",
    ],
)
def test_invalid_arguments_exit_2_with_nothing_on_stdout(run_cli, args):
    run = run_cli("token", *args, env={"ACCESS_TOKEN_SECRET": SIGNING_KEY})

    assert run.returncode == 2
    assert run.stdout == ""
    assert "usage:" in run.stderr


# --- verify --------------------------------------------------------------------------------------


def test_verify_prints_the_claims_of_a_token_read_from_stdin(run_cli):
    token = mint_access_token("alice", 600, SIGNING_KEY, limits=TokenLimits(max_tokens=64))

    run = run_cli("verify", env={"ACCESS_TOKEN_SECRET": SIGNING_KEY}, stdin=token + "\n")

    assert run.returncode == 0, run.stderr
    claims = json.loads(run.stdout)
    assert claims["sub"] == "alice"
    assert claims["limits"] == {
        "max_tokens": 64,
        "requests_per_day": None,
        "tokens_per_day": None,
        "spend_per_day": None,
        "spend_per_month": None,
    }


def test_verify_reports_the_denial_reason(run_cli):
    token = mint_access_token("alice", 600, "a-different-signing-key-0123456789-xyz")

    run = run_cli("verify", env={"ACCESS_TOKEN_SECRET": SIGNING_KEY}, stdin=token)

    assert run.returncode == 1
    assert run.stdout == ""
    assert "denied: bad signature" in run.stderr
    assert token not in run.stderr


# --- import cost ---------------------------------------------------------------------------------


def test_env_key_path_never_imports_boto3(run_cli):
    code = (
        "import sys\n"
        "import glm_relay.access\n"
        "assert 'jwt' not in sys.modules and 'boto3' not in sys.modules\n"
        "from glm_relay.cli import main\n"
        "main(['token', '--sub', 'alice'])\n"
        "assert 'boto3' not in sys.modules and 'botocore' not in sys.modules\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(REPO / "functions" / "relay"),
            "ACCESS_TOKEN_SECRET": SIGNING_KEY,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert completed.returncode == 0, completed.stderr
    assert verify_access_token(completed.stdout.strip(), SIGNING_KEY).sub == "alice"
