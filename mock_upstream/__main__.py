"""`python -m mock_upstream`: run the fake Zhipu server until interrupted.

Prints exactly one line on stdout once it accepts connections:
`mock_upstream ready base_url=http://127.0.0.1:8787/api/paas/v4` (``https://`` with
``--tls-cert``/``--tls-key``).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sys

from mock_upstream.app import build_app
from mock_upstream.options import API_KEY_ENV, DEFAULT_MODELS, MockOptions, api_key_from_env
from mock_upstream.server import Server, base_url_of, bind, make_server

READY_PREFIX = "mock_upstream ready base_url="


def _parser() -> argparse.ArgumentParser:
    defaults = MockOptions(api_key="x.y")
    p = argparse.ArgumentParser(
        prog="python -m mock_upstream",
        description="Run the fake Zhipu chat server until stopped; see mock_upstream/README.md.",
    )
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    p.add_argument("--api-key", help=f"the accepted key 'id.secret' (default: ${API_KEY_ENV})")
    p.add_argument(
        "--first-token-ms",
        type=int,
        default=defaults.first_token_ms,
        help="wait before the first data frame (default %(default)s)",
    )
    p.add_argument(
        "--chunk-delay-ms",
        type=int,
        default=defaults.chunk_delay_ms,
        help="wait before every later data frame (default %(default)s)",
    )
    p.add_argument(
        "--max-prompt-tokens",
        type=int,
        default=defaults.max_prompt_tokens,
        help="longer prompts get 400 / 1261 (default %(default)s)",
    )
    p.add_argument(
        "--models",
        default=",".join(DEFAULT_MODELS),
        help="comma-separated accepted model names",
    )
    p.add_argument(
        "--slow-headers-ms",
        type=int,
        default=defaults.slow_headers_ms,
        help="how long #fault=slow_headers holds the headers (default %(default)s)",
    )
    p.add_argument(
        "--stall-ms",
        type=int,
        default=defaults.stall_ms,
        help="how long #fault=stall goes silent mid-stream (default %(default)s)",
    )
    p.add_argument(
        "--retry-after", type=int, default=None, help="Retry-After seconds on 429/503 faults"
    )
    p.add_argument(
        "--key-fault",
        action="append",
        default=[],
        metavar="ID=FAULT",
        help="answer the key ID as invalid, out of balance or rate limited "
        "(FAULT: invalid, balance, rate_limit); repeatable",
    )
    p.add_argument(
        "--tls-cert", help="serve HTTPS with this certificate chain (PEM; needs --tls-key)"
    )
    p.add_argument("--tls-key", help="the private key of --tls-cert (PEM)")
    p.add_argument("--log-level", default="warning", help="uvicorn's log level (on stderr)")
    p.add_argument("--access-log", action="store_true", help="log each request (on stderr)")
    return p


async def _serve(server: Server, sockets: list[socket.socket], tls: bool) -> None:
    task = asyncio.create_task(server.serve(sockets=sockets))
    while not server.ready.is_set() and not task.done():
        await asyncio.sleep(0.01)
    if server.ready.is_set():
        print(READY_PREFIX + base_url_of(sockets[0], tls=tls), flush=True)
    await task


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    api_key = args.api_key or api_key_from_env()
    if not api_key:
        print(f"error: pass --api-key or set {API_KEY_ENV}", file=sys.stderr)
        return 2
    try:
        options = MockOptions(
            api_key=api_key,
            first_token_ms=args.first_token_ms,
            chunk_delay_ms=args.chunk_delay_ms,
            max_prompt_tokens=args.max_prompt_tokens,
            models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
            slow_headers_ms=args.slow_headers_ms,
            stall_ms=args.stall_ms,
            retry_after=args.retry_after,
            key_faults=dict(item.partition("=")[::2] for item in args.key_fault),
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if bool(args.tls_cert) != bool(args.tls_key):
        print("error: --tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    sock = bind(args.host, args.port)
    server = make_server(
        build_app(options),
        args.log_level,
        args.access_log,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
    )
    try:
        asyncio.run(_serve(server, [sock], bool(args.tls_cert)))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
