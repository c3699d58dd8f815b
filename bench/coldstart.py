"""Cold-path figures: a new container's first token, the handler's import time, the secret read.

Every run uses a Lambda-shaped task root (``bench/lambda_site.py``): the function's package as
``sam build`` ships it and only its dependencies, not this virtualenv's extras.

- Cold start under the Runtime Interface Emulator: a fresh emulator starts the real bootstrap on
  its first invocation; timed from sending that invocation to the whole framed response of a
  one-chunk answer (the emulator buffers, so this is first token plus the ``done`` frame). The
  work is what a first visitor waits for: process start, imports, the secret (from moto, through
  the extension stand-in with an empty cache, or through the SDK), the JWT, the upstream request.
- The same, first token exactly: the runtime loop against the Runtime API stand-in, timed from
  spawning the bootstrap to the arrival of the first content chunk.
- Baseline: ``bench/baseline_relay.py`` (uvicorn + Starlette, SDK) spawned fresh, timed from
  spawning it to the first content of its first answer.
- Import time of ``glm_relay.handler`` (``python -X importtime``, cumulative), beside the
  baseline app module's.
- The secret read itself in a fresh process, per option (SDK, extension over raw asyncio,
  extension over ``http.client``, extension over a new httpx client): time from the first
  import the option needs to the secret string.

The timing of one cold start lives in ``bench/cold_runs.py`` (the deployed and wan suites time
theirs the same way), the import and secret-read measurements in ``bench/startup_costs.py``;
this module runs them interleaved and turns the samples into figures.

    python -m bench.coldstart [--quick] [--json out.json]
"""

from __future__ import annotations

import sys

from bench.cold_runs import api_cold_run, baseline_cold_run, rie_cold
from bench.common import Backends, Figure, median
from bench.lambda_site import LambdaSite
from bench.startup_costs import SECRET_OPTIONS, import_ms, secret_read_ms


def run(backends: Backends, *, quick: bool = False) -> list[Figure]:
    """The cold-path figures; each kind of sample is taken in every round, in turn, so that a
    change of load on the machine falls on all of them alike."""
    runs = 3 if quick else 7
    extra_runs = 2 if quick else 4
    with (
        # Ours as `sam build` ships it (functions/relay/Makefile: with bytecode); the same from
        # source for comparison; the baseline as an adapter-shaped app ships (source).
        LambdaSite(compiled=True) as site,
        LambdaSite(baseline=True) as baseline_site,
        LambdaSite() as source_site,
    ):
        # Interleaved, so that a load change on the machine falls on both sides alike.
        detail: dict[str, list[float]] = {
            name: []
            for name in (
                "ours_rie_extension",
                "baseline_sdk",
                "ours_runtime_api_extension",
                "ours_rie_sdk",
                "baseline_extension",
            )
        }
        if not quick:
            detail["ours_runtime_api_source"] = []
            detail["ours_rie_dev_virtualenv"] = []
        handler: list[float] = []
        handler_source: list[float] = []
        baseline_import: list[float] = []
        options: dict[str, list[float]] = {name: [] for name in SECRET_OPTIONS}
        for index in range(runs):
            detail["ours_rie_extension"].append(rie_cold(backends, site, "extension"))
            detail["baseline_sdk"].append(baseline_cold_run(backends, baseline_site, "sdk").ms)
            detail["ours_runtime_api_extension"].append(
                api_cold_run(backends, site, "extension").ms
            )
            if index < extra_runs:
                detail["ours_rie_sdk"].append(rie_cold(backends, site, "sdk"))
                detail["baseline_extension"].append(
                    baseline_cold_run(backends, baseline_site, "extension").ms
                )
                if not quick:
                    detail["ours_runtime_api_source"].append(
                        api_cold_run(backends, source_site, "extension").ms
                    )
                    detail["ours_rie_dev_virtualenv"].append(rie_cold(backends, None, "extension"))
            handler.append(import_ms(site, "glm_relay.handler"))
            handler_source.append(import_ms(source_site, "glm_relay.handler"))
            baseline_import.append(import_ms(baseline_site, "bench.baseline_relay"))
            for name in SECRET_OPTIONS:
                options[name].append(secret_read_ms(backends, site, name))
    ours_rie, baseline = detail["ours_rie_extension"], detail["baseline_sdk"]
    cold, base = median(ours_rie), median(baseline)
    medians = {name: median(values) for name, values in detail.items()}
    note = (
        f"ours under the emulator (whole 1-chunk answer); same with the SDK "
        f"{medians['ours_rie_sdk']:.0f} ms; baseline with the extension "
        f"{medians['baseline_extension']:.0f} ms"
    )
    if "ours_rie_dev_virtualenv" in medians:
        note += f"; ours in the dev virtualenv {medians['ours_rie_dev_virtualenv']:.0f} ms"
    figures = [
        Figure(
            key="cold_start",
            name="cold start: first invocation, first token",
            unit="ms",
            ours=cold,
            baseline=base,
            target="<= 50% of baseline",
            met=cold <= base / 2,
            note=note,
            runs=runs,
            detail=detail,
        ),
        Figure(
            key="cold_start_runtime_api",
            name="cold start: spawn to first token (Runtime API)",
            unit="ms",
            ours=medians["ours_runtime_api_extension"],
            baseline=base,
            note="exact first-token time at the Runtime API stand-in"
            + (
                f"; from source (no bytecode) {medians['ours_runtime_api_source']:.0f} ms"
                if "ours_runtime_api_source" in medians
                else ""
            ),
            runs=runs,
        ),
        Figure(
            key="handler_import",
            name="import of the handler module",
            unit="ms",
            ours=median(handler),
            baseline=median(baseline_import),
            target="< 150 ms",
            met=median(handler) < 150,
            note=(
                f"-X importtime, cumulative, with bytecode as sam build ships it; from source "
                f"{median(handler_source):.0f} ms; baseline: its app module"
            ),
            runs=runs,
            detail={
                "ours": handler,
                "ours_source": handler_source,
                "baseline": baseline_import,
            },
        ),
        Figure(
            key="secret_read_cold",
            name="secret read, first in a new process",
            unit="ms",
            ours=median(options["extension"]),
            baseline=median(options["sdk"]),
            note=(
                f"ours: extension over raw asyncio; baseline: SDK (Powertools); extension over "
                f"http.client {median(options['http.client']):.1f} ms, over a new httpx client "
                f"{median(options['httpx']):.0f} ms"
            ),
            runs=runs,
            detail=options,
        ),
    ]
    return figures


def main(argv: list[str] | None = None) -> int:
    from bench.__main__ import main as suite

    return suite(["--only", "coldstart", *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
