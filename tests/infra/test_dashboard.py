"""The operator's dashboard and the sidelined-key alarm read the metrics the function writes,
under the names and dimensions it writes them (``glm_relay.web.telemetry``)."""

from __future__ import annotations

import json
import re
from typing import Any

from glm_relay.web import telemetry

Doc = dict[str, Any]


def dashboard(template: Doc) -> Doc:
    body = template["Resources"]["RelayDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(body.replace("${AWS::Region}", "eu-west-1"))


def searched(widget: Doc) -> list[tuple[str, tuple[str, ...], str]]:
    """(namespace, dimensions, metric name) of each SEARCH in a widget."""
    found = []
    for (metric,) in widget["properties"]["metrics"]:
        match = re.fullmatch(
            r"SEARCH\('\{([^}]*)\} MetricName=\"([^\"]+)\"', '\w+', 300\)", metric["expression"]
        )
        assert match, metric["expression"]
        namespace, *dimensions = [part.strip('"') for part in match.group(1).split(",")]
        found.append((namespace, tuple(dimensions), match.group(2)))
    return found


def test_the_dashboard_charts_what_an_operator_of_a_team_asks_for(template: Doc) -> None:
    widgets = {w["properties"]["title"]: searched(w) for w in dashboard(template)["widgets"]}
    outcome = ("outcome", "service")
    model = (telemetry.MODEL_DIMENSION,)

    assert widgets == {
        "Requests by outcome": [("GlmRelay", outcome, telemetry.REQUESTS)],
        "Errors by code": [("GlmRelay", (telemetry.ERROR_DIMENSION,), telemetry.ERRORS)],
        "Time to first token (s)": [("GlmRelay", outcome, telemetry.TIME_TO_FIRST_CHUNK)] * 2,
        "Tokens per model": [
            ("GlmRelay", model, telemetry.INPUT_TOKENS),
            ("GlmRelay", model, telemetry.CACHED_TOKENS),
            ("GlmRelay", model, telemetry.OUTPUT_TOKENS),
        ],
        "Cost per model (Currency)": [("GlmRelay", model, telemetry.COST)],
        "Sidelined keys": [("GlmRelay", ("reason",), telemetry.SIDELINED_KEYS)],
    }
    assert telemetry.NAMESPACE == "GlmRelay"
    assert template["Outputs"]["DashboardName"]["Value"] == {"Ref": "RelayDashboard"}


def test_a_sidelined_key_raises_the_alarm(template: Doc) -> None:
    alarm = template["Resources"]["RelayKeySidelinedAlarm"]["Properties"]
    stats = {m["Id"]: m["MetricStat"]["Metric"] for m in alarm["Metrics"] if "MetricStat" in m}
    assert {m["MetricName"] for m in stats.values()} == {telemetry.SIDELINED_KEYS}
    assert {m["Dimensions"][0]["Value"] for m in stats.values()} == {"invalid", "out_of_balance"}
    assert alarm["Threshold"] == 1
