"""Which DynamoDB client for the relay: boto3, aiodynamo, or httpx + aws-sdk-signers (chosen).

``python -m bench.ddb_clients`` starts moto on loopback behind a keep-alive front
(``bench/moto_keepalive.py``: moto closes every connection, DynamoDB does not), over plain HTTP
and over HTTPS, and runs each option in fresh processes (``bench/ddb_child.py``), each process on a
fresh table shaped like the relay's. The options take turns; every figure is the median of
``--runs`` processes. An option whose package is not installed is skipped (aiodynamo is not in
requirements-dev.txt: ``pip install aiodynamo==26.4`` to include it).

- import: what the option adds to a process that already has asyncio, json and httpx loaded, as
  ``python -X importtime`` reports it (the cumulative time of every top-level import it makes),
  and the wall time of the same imports in a process without ``-X importtime``;
- first call: building the client from the environment plus the quota store's conditional
  UpdateItem, the first thing a request does with the table;
- warm: per operation, the median of ``--warm`` rounds in the same process (wall and CPU of the
  client's process: moto's time is not in the CPU figure, so it is the client's own cost).

Also: importing httpx in a fresh interpreter vs when it is already imported, and building TLS
contexts (``ssl.create_default_context()`` with the system CAs, with certifi's bundle as httpx
does by default, and a whole ``httpx.AsyncHTTPTransport``).

    python -m bench.ddb_clients               # 5 processes per figure, about a minute
    python -m bench.ddb_clients --runs 3 --warm 20 --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.moto_keepalive import fresh_table, moto_servers

ROOT = Path(__file__).resolve().parents[1]
CHILD = Path(__file__).with_name("ddb_child.py")
MARK = "@@option-imports-start"
REGION = "us-east-1"
OPTIONS = ("boto3", "aiodynamo", "sigv4", "sigv4-shared-tls")
LABELS = {
    "boto3": "boto3 client, calls in a worker thread",
    "aiodynamo": "aiodynamo over httpx.AsyncClient",
    "sigv4": "httpx + aws-sdk-signers (glm_relay.state.dynamo_client)",
    "sigv4-shared-tls": "same, TLS context shared with the Zhipu transport (as deployed)",
}
PACKAGES = {"boto3": "boto3", "aiodynamo": "aiodynamo", "sigv4": "aws_sdk_signers"}


def installed_options() -> list[str]:
    """The options whose package this interpreter has; the others are left out of the table."""
    from importlib.util import find_spec

    return [o for o in OPTIONS if find_spec(PACKAGES.get(o, "aws_sdk_signers")) is not None]


OPS = ("UpdateItem", "UpdateItem refused", "GetItem", "Query", "PutItem")
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")
CHILD_TIMEOUT_S = 120

# Snippets for the side measurements; each prints one number of milliseconds.
EXTRAS = {
    "import httpx, fresh interpreter (-X importtime)": None,
    "import httpx, already imported": (
        "import time, httpx\nt = time.perf_counter()\nimport httpx\n"
        "print((time.perf_counter() - t) * 1000)"
    ),
    "ssl.create_default_context() (system CAs)": (
        "import ssl, time\nt = time.perf_counter()\nssl.create_default_context()\n"
        "print((time.perf_counter() - t) * 1000)"
    ),
    "ssl.create_default_context(cafile=certifi) (httpx default)": (
        "import ssl, time, certifi\nt = time.perf_counter()\n"
        "ssl.create_default_context(cafile=certifi.where())\n"
        "print((time.perf_counter() - t) * 1000)"
    ),
    "httpx.AsyncHTTPTransport() (builds the certifi context)": (
        "import time, httpx\nt = time.perf_counter()\nhttpx.AsyncHTTPTransport()\n"
        "print((time.perf_counter() - t) * 1000)"
    ),
    "second httpx.AsyncHTTPTransport(verify=<shared context>)": (
        "import time, httpx\nhttpx.AsyncHTTPTransport()\nctx = httpx.create_ssl_context()\n"
        "t = time.perf_counter()\nhttpx.AsyncHTTPTransport(verify=ctx)\n"
        "print((time.perf_counter() - t) * 1000)"
    ),
}


def child_env(endpoint: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A Lambda-like environment: credentials and region in variables, nothing on disk."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "PYTHON", "SSL_CERT")) and k != "VIRTUAL_ENV"
    }
    env.update(
        PYTHONPATH=os.pathsep.join([str(ROOT / "functions" / "relay"), str(ROOT)]),
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        AWS_SESSION_TOKEN="testing-session",
        AWS_REGION=REGION,
        AWS_DEFAULT_REGION=REGION,
        AWS_ENDPOINT_URL_DYNAMODB=endpoint,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )
    env.update(extra or {})
    return env


def run(args: Sequence[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, *args],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{args} failed:\n{result.stderr[-3000:]}")
    return result


def option_import_ms(stderr: str) -> float:
    """Sum of the cumulative times of the top-level imports after the mark."""
    seen_mark = False
    total_us = 0
    for line in stderr.splitlines():
        if line == MARK:
            seen_mark = True
            continue
        match = IMPORT_LINE.match(line)
        if seen_mark and match and match.group(3) == " ":  # one space: a top-level import
            total_us += int(match.group(2))
    if not seen_mark:
        raise RuntimeError(f"no mark in:\n{stderr[-2000:]}")
    return total_us / 1000


def fresh_import_ms(module: str, env: Mapping[str, str]) -> float:
    result = run(["-X", "importtime", "-c", f"import {module}"], env)
    for line in reversed(result.stderr.splitlines()):
        match = IMPORT_LINE.match(line)
        if match and match.group(4) == module:
            return int(match.group(2)) / 1000
    raise RuntimeError(f"no import line for {module}")


def calls_sample(option: str, env: Mapping[str, str], ddb: Any) -> dict[str, Any]:
    with fresh_table(ddb) as names:
        result = run([str(CHILD), option, "calls"], {**env, **names})
    sample: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return sample


def collect(samples: Sequence[dict[str, Any]], importtime: Sequence[float]) -> dict[str, Any]:
    return {
        "import_ms": list(importtime),
        "import_wall_ms": [s["import_wall_ms"] for s in samples],
        "first_ms": [s["first_ms"] for s in samples],
        "warm_ms": {op: [s["warm_ms"][op] for s in samples] for op in OPS},
        "warm_cpu_ms": {op: [s["warm_cpu_ms"][op] for s in samples] for op in OPS},
        "rss_mb": [s["rss_mb"] for s in samples],
    }


def measure(runs: int, warm: int, schemes: Sequence[str]) -> dict[str, Any]:
    """Every option over every scheme, round-robin: the options take turns, run after run, so
    a neighbour's load on this shared machine falls on all of them alike."""
    import tempfile

    options = installed_options()
    results: dict[str, Any] = {"extras": {}, "skipped": sorted(set(OPTIONS) - set(options))}
    with tempfile.TemporaryDirectory() as workdir, moto_servers(Path(workdir)) as moto:
        envs = {}
        for scheme in schemes:
            extra = {"BENCH_WARM": str(warm)}
            if scheme == "https":
                # boto3 reads AWS_CA_BUNDLE, httpx SSL_CERT_FILE: both get the same bundle.
                extra.update(SSL_CERT_FILE=moto["bundle"], AWS_CA_BUNDLE=moto["bundle"])
            envs[scheme] = child_env(moto[scheme], extra)
        # One untimed run of each first, so every timed one finds the bytecode cached (as a
        # deployed package ships it).
        for option in options:
            calls_sample(option, {**envs[schemes[0]], "BENCH_WARM": "1"}, moto["ddb"])
        importtime: dict[str, list[float]] = {option: [] for option in options}
        samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for number in range(runs):
            for option in options:
                stderr = run(["-X", "importtime", str(CHILD), option, "import"], envs[schemes[0]])
                importtime[option].append(option_import_ms(stderr.stderr))
                for scheme in schemes:
                    sample = calls_sample(option, envs[scheme], moto["ddb"])
                    samples.setdefault((scheme, option), []).append(sample)
            print(f"  run {number + 1}/{runs} done", file=sys.stderr)
        for scheme in schemes:
            results[scheme] = {
                option: collect(samples[scheme, option], importtime[option]) for option in options
            }
        env = envs[schemes[0]]
        for name, code in EXTRAS.items():
            if code is None:
                values = [fresh_import_ms("httpx", env) for _ in range(runs)]
            else:
                values = [float(run(["-c", code], env).stdout.strip()) for _ in range(runs)]
            results["extras"][name] = values
    return results


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def table(results: dict[str, Any], runs: int, warm: int) -> str:
    lines = [
        f"DynamoDB options against moto on loopback, medians of {runs} fresh processes "
        f"(warm: median of {warm} rounds in each), Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} cores",
    ]
    for scheme in ("http", "https"):
        if scheme not in results:
            continue
        lines += [
            "",
            f"Over {scheme}:" if scheme == "http" else "Over https (certifi bundle + test CA):",
            "",
            "| option | import ms (-X importtime) | import ms (wall) | first call ms "
            "(build client + conditional UpdateItem) | warm ms, mean of 5 ops | "
            "client CPU ms per warm op | peak RSS MB |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for option, r in results[scheme].items():
            warm_mean = statistics.fmean(med(r["warm_ms"][op]) for op in OPS)
            cpu_mean = statistics.fmean(med(r["warm_cpu_ms"][op]) for op in OPS)
            lines.append(
                f"| {LABELS[option]} | {med(r['import_ms']):.1f} "
                f"| {med(r['import_wall_ms']):.1f} | {med(r['first_ms']):.1f} "
                f"| {warm_mean:.2f} | {cpu_mean:.2f} | {med(r['rss_mb']):.0f} |"
            )
        lines += [
            "",
            f"Warm over {scheme}, per operation: wall ms / client CPU ms",
            "",
            "| option | " + " | ".join(OPS) + " |",
            "|---|" + "---:|" * len(OPS),
        ]
        for option, r in results[scheme].items():
            cells = [f"{med(r['warm_ms'][op]):.2f} / {med(r['warm_cpu_ms'][op]):.2f}" for op in OPS]
            lines.append(f"| {LABELS[option]} | " + " | ".join(cells) + " |")
    if results["skipped"]:
        lines += ["", "Not installed, left out: " + ", ".join(results["skipped"])]
    lines += ["", "| side measurement (fresh processes) | ms |", "|---|---:|"]
    for name, values in results["extras"].items():
        lines.append(f"| {name} | {med(values):.3f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh processes per figure")
    parser.add_argument("--warm", type=int, default=30, help="timed warm rounds per process")
    parser.add_argument("--json", type=Path, help="also write every sample here")
    parser.add_argument(
        "--schemes", default="http,https", help="comma-separated: http, https (default both)"
    )
    args = parser.parse_args(argv)
    schemes = [s for s in args.schemes.split(",") if s]
    if not schemes or set(schemes) - {"http", "https"}:
        parser.error("--schemes takes http and/or https")
    started = time.monotonic()
    results = measure(args.runs, args.warm, schemes)
    print(table(results, args.runs, args.warm))
    print(f"\n({time.monotonic() - started:.0f} s)", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
