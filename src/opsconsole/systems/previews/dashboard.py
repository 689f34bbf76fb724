"""The seed's monitoring dashboard (seed 001 "Monitoring"): its widgets, built and checked.

Five widgets: success rate, session start-up time, resource use, errors by scenario, cost
per run. The run results are the tester's metrics, in :data:`RUNS_NAMESPACE` with a
``Scenario`` dimension, named as the pack's metrics are (`burst_success_rate`,
`cold_start_seconds`, `warm_start_seconds`, `check_failures`, `estimated_cost_usd`);
resource use is ECS's own (``AWS/ECS`` CPU and memory utilization of the edit services)
plus the stack's container gauges when ``[previews] metrics_namespace`` declares where it
publishes them. :func:`validate` reads a dashboard body back and names, per widget, what is
missing — the pure half of the `sessions.monitoring` checks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

RUNS_NAMESPACE = "OpsConsole/Previews"
#: the scenarios whose results the per-scenario widgets show
SCENARIO_IDS = ("sessions.cold-start", "sessions.persistence", "sessions.concurrent",
                "sessions.routing", "sessions.failure-recovery")


@dataclass(frozen=True)
class Widget:
    """One expected widget: its title and the (namespace, metric) pairs it must show."""

    key: str
    title: str
    metrics: tuple[tuple[str, str], ...]
    #: dimensions each row of one of those metrics carries ({"ClusterName": "c"})
    dimensions: dict[str, str] = field(default_factory=dict)
    per_scenario: bool = False  # one row per scenario id (dimension Scenario)


def widgets(cluster: str, services: Sequence[str], metrics_namespace: str | None
            ) -> list[Widget]:
    """The seed's five widgets for one stack."""
    resource: list[tuple[str, str]] = [("AWS/ECS", "CPUUtilization"),
                                       ("AWS/ECS", "MemoryUtilization")]
    if metrics_namespace:
        resource += [(metrics_namespace, "RunningContainers"),
                     (metrics_namespace, "ActiveSessions")]
    return [
        Widget("success_rate", "Success rate", ((RUNS_NAMESPACE, "burst_success_rate"),),
               per_scenario=True),
        Widget("startup_time", "Session start-up time",
               ((RUNS_NAMESPACE, "cold_start_seconds"), (RUNS_NAMESPACE, "warm_start_seconds")),
               per_scenario=True),
        Widget("resource_use", "Resource use", tuple(resource),
               dimensions={"ClusterName": cluster}),
        Widget("errors", "Errors by scenario", ((RUNS_NAMESPACE, "check_failures"),),
               per_scenario=True),
        Widget("cost", "Cost per run", ((RUNS_NAMESPACE, "estimated_cost_usd"),),
               per_scenario=True),
    ]


def _rows(w: Widget, cluster: str, services: Sequence[str], metrics_namespace: str | None
          ) -> list[list[Any]]:
    rows: list[list[Any]] = []
    for ns, name in w.metrics:
        if w.per_scenario:
            rows += [[ns, name, "Scenario", sid] for sid in SCENARIO_IDS]
        elif ns == "AWS/ECS":
            rows += [[ns, name, "ClusterName", cluster, "ServiceName", s] for s in services]
        else:  # the stack's own gauges (dimension Service, as it publishes them)
            rows += [[ns, name, "Service", s, {"label": f"{name} {s}"}] for s in services]
    return rows


def build(cluster: str, services: Sequence[str], metrics_namespace: str | None,
          region: str) -> str:
    """The dashboard body (CloudWatch's JSON), two widgets a row."""
    out = []
    for i, w in enumerate(widgets(cluster, services, metrics_namespace)):
        out.append({"type": "metric", "x": (i % 2) * 12, "y": (i // 2) * 6, "width": 12,
                    "height": 6, "properties": {
                        "title": w.title, "region": region, "view": "timeSeries",
                        "stat": "Sum" if w.key in ("errors", "cost") else "Average",
                        "period": 300,
                        "metrics": _rows(w, cluster, services, metrics_namespace)}})
    return json.dumps({"widgets": out}, sort_keys=True)


def _expand(rows: Any) -> list[tuple[str, str, dict[str, str]]]:
    """(namespace, metric, dimensions) of each row; ``"."`` repeats the previous row's
    value at that position (CloudWatch's shorthand); a trailing dict is rendering options."""
    out: list[tuple[str, str, dict[str, str]]] = []
    prev: list[Any] = []
    for row in rows if isinstance(rows, list) else []:
        if not isinstance(row, list):
            continue
        cells = [c for c in row if not isinstance(c, dict)]
        cells = [prev[i] if c == "." and i < len(prev) else c for i, c in enumerate(cells)]
        prev = cells
        if len(cells) >= 2 and all(isinstance(c, str) for c in cells):
            dims = dict(zip(cells[2::2], cells[3::2], strict=False))
            out.append((cells[0], cells[1], dims))
    return out


def validate(body: str, expected: Sequence[Widget]) -> dict[str, list[str]]:
    """Per expected widget title, what is wrong with it in ``body`` (empty: it is right)."""
    try:
        doc = json.loads(body)
    except (TypeError, ValueError):
        return {w.title: ["the dashboard body is not JSON"] for w in expected}
    found = doc.get("widgets") if isinstance(doc, dict) else None
    if not isinstance(found, list):
        return {w.title: ["the dashboard body has no widgets list"] for w in expected}
    by_title: dict[str, dict[str, Any]] = {}
    for widget in found:
        props = widget.get("properties") if isinstance(widget, dict) else None
        if isinstance(props, dict) and isinstance(props.get("title"), str):
            by_title.setdefault(props["title"].strip().lower(), widget)
    problems: dict[str, list[str]] = {}
    for w in expected:
        got = by_title.get(w.title.lower())
        wrong: list[str] = []
        if got is None:
            wrong.append(f"no widget titled {w.title!r}")
        else:
            if got.get("type") != "metric":
                wrong.append(f"type {got.get('type')!r}, not 'metric'")
            rows = _expand(got["properties"].get("metrics"))
            for ns, name in w.metrics:
                mine = [d for n, m, d in rows if (n, m) == (ns, name)]
                if not mine:
                    wrong.append(f"no metric {ns} {name}")
                elif w.per_scenario and not {d.get("Scenario") for d in mine} >= set(
                        SCENARIO_IDS):
                    wrong.append(f"{ns} {name} lacks a Scenario row of "
                                 + ", ".join(sorted(set(SCENARIO_IDS) - {
                                     d.get("Scenario") for d in mine})))
                elif ns == "AWS/ECS" and any(d.get(k) != v for d in mine
                                             for k, v in w.dimensions.items()):
                    wrong.append(f"{ns} {name} not on {w.dimensions}")
        problems[w.title] = wrong
    return problems


#: the pack's metrics the dashboard shows, published after each scenario of the pack
PUBLISHED = ("burst_success_rate", "cold_start_seconds", "warm_start_seconds",
             "estimated_cost_usd")
PUBLISHES = (f"publish the run's metrics to CloudWatch {RUNS_NAMESPACE} (the dashboard's "
             "data; only when [previews] dashboard is set)")


def datapoints(scenario_id: str, metrics: dict[str, float], failures: int
               ) -> list[dict[str, Any]]:
    """The ``MetricData`` of one scenario run: its dashboard metrics and its failed checks
    (``check_failures``), dimension ``Scenario``."""
    dims = [{"Name": "Scenario", "Value": scenario_id}]
    data = [{"MetricName": name, "Value": float(metrics[name]), "Dimensions": dims,
             "Unit": "Seconds" if name.endswith("_seconds") else "None"}
            for name in PUBLISHED if name in metrics]
    data.append({"MetricName": "check_failures", "Value": float(failures),
                 "Dimensions": dims, "Unit": "Count"})
    return data
