"""Issue 18 items 6 and 7 on the lab: `sessions.monitoring` puts the seed's dashboard on
moto's CloudWatch, reads it back and checks every widget, and its rollback removes only
what it made; a scenario of the pack publishes the data the dashboard shows; a dashboard
missing a widget, read back from moto, fails the validation (negative control). The cost
check of every scenario is asserted in test_sessions_pack.py."""

from __future__ import annotations

import json

import botocore.session

from opsconsole.lab import Lab
from opsconsole.lab.inventory import lab_previews
from opsconsole.lab.supervisor import DUMMY_AWS_KEY
from opsconsole.systems.previews import dashboard

from ..helpers import run_cli


def _cloudwatch(lab: Lab):
    return botocore.session.get_session().create_client(
        "cloudwatch", region_name=lab.spec.aws_region, endpoint_url=lab.topology().moto_url,
        aws_access_key_id=DUMMY_AWS_KEY, aws_secret_access_key=DUMMY_AWS_KEY)


def _run(lab: Lab, scenario: str, tmp_path) -> dict:
    out = run_cli("run", scenario, "--json", "--report", str(tmp_path / scenario),
                  "--state-dir", str(lab.dir.root), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-3000:]
    [result] = json.loads(out.stdout)
    return result


def test_monitoring_puts_reads_back_and_checks_the_dashboard(lab: Lab, tmp_path) -> None:
    target = lab_previews(lab, lab.topology().sessions_url)
    name = target.dashboard
    cw = _cloudwatch(lab)
    # a scenario of the pack publishes what the dashboard shows (its data)
    routing = _run(lab, "sessions.routing", tmp_path)
    [published] = [c for c in routing["checks"] if "published for the dashboard" in c["name"]]
    assert published["status"] == "pass", published
    found = cw.list_metrics(Namespace=dashboard.RUNS_NAMESPACE, Dimensions=[
        {"Name": "Scenario", "Value": "sessions.routing"}])["Metrics"]
    assert {"check_failures", "estimated_cost_usd"} <= {m["MetricName"] for m in found}
    result = _run(lab, "sessions.monitoring", tmp_path)
    checks = {c["name"]: c for c in result["checks"]}
    widgets = [c for n, c in checks.items() if n.startswith("monitoring: widget ")]
    assert result["status"] == "pass" and len(widgets) == 5, result
    assert checks["monitoring: put_dashboard accepted (no validation messages)"][
        "evidence"]["existed_before"] is False
    names = [d["DashboardName"] for d in cw.list_dashboards()["DashboardEntries"]]
    assert name not in names  # the rollback deleted what this run created

    # negative control on the real path: moto stores a dashboard without "Cost per run"
    body = json.loads(dashboard.build(target.cluster, target.services,
                                      target.metrics_namespace, lab.spec.aws_region))
    body["widgets"] = [w for w in body["widgets"]
                       if w["properties"]["title"] != "Cost per run"]
    cw.put_dashboard(DashboardName=name, DashboardBody=json.dumps(body))
    try:
        back = cw.get_dashboard(DashboardName=name)["DashboardBody"]
        expected = dashboard.widgets(target.cluster, target.services,
                                     target.metrics_namespace)
        problems = dashboard.validate(back, expected)
        assert problems["Cost per run"] == ["no widget titled 'Cost per run'"]
        assert not problems["Success rate"]
        # a dashboard that existed before the run gets its old body back
        again = _run(lab, "sessions.monitoring", tmp_path / "again")
        assert again["status"] == "pass", again
        assert cw.get_dashboard(DashboardName=name)["DashboardBody"] == back
    finally:
        cw.delete_dashboards(DashboardNames=[name])
