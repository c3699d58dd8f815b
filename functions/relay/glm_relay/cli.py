"""Operator CLI: mint and inspect access tokens, report usage (``python -m glm_relay --help``).

The signing key is looked up in this order, the first source present wins:

1. ``--signing-key-env NAME``: the value of environment variable ``NAME``;
2. ``--secret-id ID``: the secret string of ``ID`` in Secrets Manager;
3. ``ACCESS_TOKEN_SECRET``: the key itself (local runs);
4. ``ACCESS_TOKEN_SECRET_ID``: a Secrets Manager secret id.

Explicit options come before the environment, so an exported development key never silently signs
a token meant for a deployed stack. The secret string is used verbatim, as the function uses it.
boto3 is imported only when a secret id is used; ``AWS_ENDPOINT_URL_SECRETS_MANAGER`` and the
usual AWS variables apply.

Exit codes: 0 success, 1 the key could not be fetched or used (or the token was denied), 2 usage
error or no key source. Standard output carries only the result (the token, or the claims as
JSON); the key is never printed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict

from glm_relay.access import (
    MAX_LIMIT_VALUE,
    MAX_SUB_LENGTH,
    AccessDenied,
    TokenLimits,
    mint_access_token,
    valid_subject,
    verify_access_token,
)

TABLE_ENV = "CONVERSATIONS_TABLE"
SECRET_ENV = "ACCESS_TOKEN_SECRET"
SECRET_ID_ENV = "ACCESS_TOKEN_SECRET_ID"
PROG = "python -m glm_relay"


class CliError(Exception):
    """A failure reported as one line on stderr with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    """Run the CLI and return its exit code (``argv`` and ``environ`` default to the process's).

    Example: ``main(["token", "--sub", "alice", "--ttl", "600"], {"ACCESS_TOKEN_SECRET": key})``
    prints one token and returns 0.
    """
    env = os.environ if environ is None else environ
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        command: Callable[[argparse.Namespace, Mapping[str, str]], int] = args.run
        return command(args, env)
    except CliError as exc:
        print(f"{PROG}: error: {exc.message}", file=sys.stderr)
        return exc.exit_code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operator tools for glm-relay access tokens.",
        epilog=(
            f"Signing key sources, first present wins: --signing-key-env NAME, --secret-id ID, "
            f"${SECRET_ENV}, ${SECRET_ID_ENV}."
        ),
    )
    commands = parser.add_subparsers(title="commands", metavar="COMMAND", required=True)

    token = commands.add_parser(
        "token",
        help="mint an access token and print it on stdout",
        description="Mint a short-lived access token (HS256 JWT) and print it on stdout.",
    )
    token.add_argument(
        "--sub",
        required=True,
        type=_subject,
        help=f"who the token is for (quota key; printable, at most {MAX_SUB_LENGTH} characters)",
    )
    token.add_argument(
        "--ttl",
        type=_positive_int,
        default=3600,
        metavar="SECONDS",
        help="lifetime in seconds (default: 3600)",
    )
    token.add_argument(
        "--requests-per-day", type=_limit, metavar="N", help="override the daily request quota"
    )
    token.add_argument(
        "--tokens-per-day", type=_limit, metavar="N", help="override the daily token quota"
    )
    token.add_argument(
        "--max-tokens", type=_limit, metavar="N", help="override max_tokens per request"
    )
    token.add_argument(
        "--spend-per-day", type=_money, metavar="AMOUNT", help="daily budget in CURRENCY"
    )
    token.add_argument(
        "--spend-per-month", type=_money, metavar="AMOUNT", help="monthly budget in CURRENCY"
    )
    _add_key_options(token)
    token.set_defaults(run=_run_token)

    verify = commands.add_parser(
        "verify",
        help="check a token read from stdin and print its claims as JSON",
        description=(
            "Read one token from stdin (so it stays out of shell history and the process list), "
            "verify it like the function does, and print its claims as JSON."
        ),
    )
    verify.add_argument(
        "--leeway", type=_non_negative_int, default=0, metavar="SECONDS", help="clock skew allowed"
    )
    _add_key_options(verify)
    verify.set_defaults(run=_run_verify)

    usage = commands.add_parser(
        "usage",
        help="report usage per user and model over a date range",
        description=(
            "Sum the table's usage items (requests, input, cached and output tokens, cost in the "
            "deployment's CURRENCY) per user and model over UTC days FROM..TO; a scan of the "
            "table, or one query per --user."
        ),
    )
    usage.add_argument("--table", help=f"the table (default: ${TABLE_ENV})")
    usage.add_argument("--from", dest="first", type=_day, metavar="YYYY-MM-DD", help="first day")
    usage.add_argument("--to", dest="last", type=_day, metavar="YYYY-MM-DD", help="last day")
    usage.add_argument("--user", action="append", default=[], help="only this user (repeatable)")
    usage.add_argument("--format", choices=("table", "csv"), default="table")
    usage.add_argument(
        "--currency",
        choices=("USD", "CNY"),
        help="the deployment's CURRENCY, which the amounts are in (default: $CURRENCY, else USD)",
    )
    usage.add_argument("--region", help="AWS region (default: AWS settings)")
    usage.set_defaults(run=_run_usage)
    return parser


def _add_key_options(parser: argparse.ArgumentParser) -> None:
    sources = parser.add_argument_group("signing key").add_mutually_exclusive_group()
    sources.add_argument(
        "--signing-key-env", metavar="NAME", help="read the signing key from environment NAME"
    )
    sources.add_argument(
        "--secret-id", metavar="ID", help="fetch the signing key from Secrets Manager"
    )
    parser.add_argument("--region", help="AWS region for --secret-id (default: AWS settings)")


def _run_token(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    key = _signing_key(args, env)
    limits = TokenLimits(
        requests_per_day=args.requests_per_day,
        tokens_per_day=args.tokens_per_day,
        max_tokens=args.max_tokens,
        spend_per_day=args.spend_per_day,
        spend_per_month=args.spend_per_month,
    )
    try:
        token = mint_access_token(args.sub, args.ttl, key, limits=limits)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    print(token)
    return 0


def _run_verify(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    key = _signing_key(args, env)
    token = sys.stdin.read().strip()
    try:
        claims = verify_access_token(token, key, leeway_seconds=args.leeway)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    except AccessDenied as exc:
        raise CliError(f"denied: {exc.message}") from None
    print(json.dumps(asdict(claims), sort_keys=True))
    return 0


def _run_usage(args: argparse.Namespace, env: Mapping[str, str]) -> int:
    from glm_relay.state.usage import render, report, today, usage_items

    table = args.table or env.get(TABLE_ENV, "")
    if not table:
        raise CliError(f"no table: pass --table or set {TABLE_ENV}", 2)
    last = args.last or today()
    first = args.first or last[:8] + "01"
    if first > last:
        raise CliError(f"--from {first} is after --to {last}: no day is in that range", 2)
    try:
        items = usage_items(table, args.user, region=args.region)
        currency = args.currency or env.get("CURRENCY", "").upper() or "USD"
        print(render(report(items, first, last, currency), args.format), end="")
    except ImportError:
        raise CliError("usage needs boto3 (pip install boto3)") from None
    except Exception as exc:  # boto3's errors: say what failed, without a traceback
        raise CliError(f"could not read table {table!r}: {type(exc).__name__}: {exc}") from None
    return 0


def _signing_key(args: argparse.Namespace, env: Mapping[str, str]) -> str:
    if args.signing_key_env:
        value = env.get(args.signing_key_env, "")
        if not value:
            raise CliError(f"environment variable {args.signing_key_env} is not set or empty", 2)
        return value
    if args.secret_id:
        return _fetch_secret(args.secret_id, args.region)
    if value := env.get(SECRET_ENV, ""):
        return value
    if secret_id := env.get(SECRET_ID_ENV, ""):
        return _fetch_secret(secret_id, args.region)
    raise CliError(
        "no signing key: pass --signing-key-env NAME or --secret-id ID, "
        f"or set {SECRET_ENV} or {SECRET_ID_ENV}",
        2,
    )


def _fetch_secret(secret_id: str, region: str | None) -> str:
    """The secret string of ``secret_id``; boto3 is imported here and nowhere else."""
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise CliError("--secret-id needs boto3 (pip install boto3)") from None

    try:
        client = boto3.client("secretsmanager", region_name=region)
        response = client.get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise CliError(f"could not read secret {secret_id!r}: {code}") from None
    except BotoCoreError as exc:
        raise CliError(f"could not read secret {secret_id!r}: {exc}") from None
    value = response.get("SecretString")
    if not isinstance(value, str) or not value:
        raise CliError(f"secret {secret_id!r} has no SecretString")
    return value


def _subject(text: str) -> str:
    if not valid_subject(text):
        raise argparse.ArgumentTypeError(
            f"must be a non-empty printable string of at most {MAX_SUB_LENGTH} characters"
        )
    return text


def _positive_int(text: str) -> int:
    value = _int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = _int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be a non-negative integer")
    return value


def _limit(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= MAX_LIMIT_VALUE:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to {MAX_LIMIT_VALUE}")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def _money(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("must be a number from 0")
    return value


def _day(text: str) -> str:
    import datetime

    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date YYYY-MM-DD: {text!r}") from None
