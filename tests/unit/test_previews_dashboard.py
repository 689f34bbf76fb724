"""The seed's monitoring dashboard (issue 18, item 7): the body the pack puts has every
widget; the validator names what a broken one lacks (negative controls: a missing widget,
a wrong namespace, a scenario row missing, a non-metric widget, a body that is not JSON)."""

from __future__ import annotations

import json

from opsconsole.systems.previews import dashboard

EXPECTED = dashboard.widgets("c", ["edit"], "Stack/NS")


def _body() -> dict:
    return json.loads(dashboard.build("c", ["edit"], "Stack/NS", "us-east-1"))


def test_the_built_dashboard_has_every_seed_widget() -> None:
    body = dashboard.build("c", ["edit"], "Stack/NS", "us-east-1")
    problems = dashboard.validate(body, EXPECTED)
    assert list(problems) == ["Success rate", "Session start-up time", "Resource use",
                              "Errors by scenario", "Cost per run"]
    assert all(not p for p in problems.values()), problems
    rows = json.loads(body)["widgets"][2]["properties"]["metrics"]
    assert ["AWS/ECS", "CPUUtilization", "ClusterName", "c", "ServiceName", "edit"] in rows


def test_a_dashboard_missing_a_widget_fails_its_validation() -> None:
    doc = _body()
    doc["widgets"] = [w for w in doc["widgets"] if w["properties"]["title"] != "Cost per run"]
    problems = dashboard.validate(json.dumps(doc), EXPECTED)
    assert problems["Cost per run"] == ["no widget titled 'Cost per run'"]
    assert not problems["Success rate"]


def test_wrong_namespace_missing_row_and_wrong_type_are_named() -> None:
    doc = _body()
    by = {w["properties"]["title"]: w for w in doc["widgets"]}
    for row in by["Success rate"]["properties"]["metrics"]:
        row[0] = "Other/NS"
    by["Errors by scenario"]["properties"]["metrics"].pop()  # one scenario less
    by["Resource use"]["type"] = "text"
    problems = dashboard.validate(json.dumps(doc), EXPECTED)
    assert problems["Success rate"] == ["no metric OpsConsole/Previews burst_success_rate"]
    assert "lacks a Scenario row of sessions.failure-recovery" in problems[
        "Errors by scenario"][0]
    assert problems["Resource use"] == ["type 'text', not 'metric'"]
    assert dashboard.validate("{not json", EXPECTED)["Cost per run"] == [
        "the dashboard body is not JSON"]


def test_cloudwatchs_dot_shorthand_repeats_the_previous_row() -> None:
    rows = [["AWS/ECS", "CPUUtilization", "ClusterName", "c", "ServiceName", "edit"],
            [".", "MemoryUtilization", ".", ".", ".", ".", {"label": "mem"}]]
    assert dashboard._expand(rows)[1] == ("AWS/ECS", "MemoryUtilization",
                                          {"ClusterName": "c", "ServiceName": "edit"})


def test_without_the_stacks_namespace_resource_use_is_ecs_only() -> None:
    [resource] = [w for w in dashboard.widgets("c", ["edit"], None) if w.key == "resource_use"]
    assert resource.metrics == (("AWS/ECS", "CPUUtilization"), ("AWS/ECS", "MemoryUtilization"))


def test_the_published_datapoints_are_the_dashboards_metrics() -> None:
    data = dashboard.datapoints("sessions.cold-start", {"cold_start_seconds": 3.5,
                                                        "estimated_cost_usd": 0.0002,
                                                        "orphans": 0}, failures=2)
    assert [(d["MetricName"], d["Value"], d["Unit"]) for d in data] == [
        ("cold_start_seconds", 3.5, "Seconds"), ("estimated_cost_usd", 0.0002, "None"),
        ("check_failures", 2.0, "Count")]
    assert all(d["Dimensions"] == [{"Name": "Scenario", "Value": "sessions.cold-start"}]
               for d in data)
    shown = {m for w in EXPECTED if w.per_scenario for _, m in w.metrics}
    assert shown == {*dashboard.PUBLISHED, "check_failures"}  # every widget gets its data
