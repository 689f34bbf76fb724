"""`sessions.monitoring`: the seed's CloudWatch dashboard, created, read back and checked.

``put_dashboard`` with the five widgets of :mod:`..dashboard` under ``[previews]
dashboard``, then ``get_dashboard`` and ``list_dashboards``: each widget is a check (present,
a metric widget, every metric of the right namespace and name, one row per scenario where
the widget is per scenario). The rollback deletes the dashboard only when this scenario
created it; one that existed before gets its old body back.
"""

from __future__ import annotations

from typing import Any

from ....scenarios.engine import Outcome, Run, Scenario, outcome
from ....targets.aws import region_of
from .. import dashboard
from ..aws import Missing
from .targets import previews_aws as _aws
from .targets import previews_target as _target

PUTS = ("create (or overwrite) the CloudWatch dashboard [previews] dashboard; the rollback "
        "deletes it if it did not exist before, else puts its old body back")


async def _body(cw: Any, name: str) -> str | None:
    """The dashboard's body, None when there is none of that name."""
    try:
        return str((await cw.get_dashboard(DashboardName=name))["DashboardBody"])
    except cw.exceptions.ResourceNotFound:
        return None


class Monitoring(Scenario):
    id = "sessions.monitoring"
    title = "the seed's CloudWatch dashboard: created, read back, every widget checked"
    needs_lab = False
    mutates = (PUTS,)

    async def method(self, run: Run) -> None:
        target = _target(run)
        if not target.dashboard:
            await run.record("monitoring: dashboard created", (
                "unknown", {"reason": "the inventory has no [previews] dashboard"}))
            return
        name = target.dashboard
        async with _aws(run) as aws:
            try:
                cw = await aws.client("cloudwatch")
                cluster = aws._need("cluster")
                services = aws._need("services")
            except Missing as exc:
                await run.record("monitoring: dashboard created", ("unknown",
                                                                   {"reason": str(exc)}))
                return
            state: dict[str, Any] = {"name": name, "before": await _body(cw, name)}
            run._previews_dashboard = state  # type: ignore[attr-defined]
            body = dashboard.build(cluster, services, target.metrics_namespace,
                                   region_of(run.inventory.aws))
            run.mutate(f"put the CloudWatch dashboard {name}", "cloudwatch")
            put = await cw.put_dashboard(DashboardName=name, DashboardBody=body)
            state["put"] = True
            messages = put.get("DashboardValidationMessages") or []
            await run.record("monitoring: put_dashboard accepted (no validation messages)",
                             outcome(not messages, dashboard=name, existed_before=(
                                 state["before"] is not None), messages=messages[:5]))
            back = await _body(cw, name)
            await run.record("monitoring: get_dashboard reads it back", outcome(
                back is not None, dashboard=name, bytes=len(back or "")))
            listed = await cw.list_dashboards(DashboardNamePrefix=name)
            names = [d.get("DashboardName") for d in listed.get("DashboardEntries", [])]
            await run.record("monitoring: list_dashboards lists it",
                             outcome(name in names, listed=names[:10]))
            expected = dashboard.widgets(cluster, services, target.metrics_namespace)
            problems = dashboard.validate(back or "", expected)
            for w in expected:
                await run.record(f"monitoring: widget {w.title!r} shows "
                                 + ", ".join(f"{ns} {m}" for ns, m in w.metrics),
                                 _widget(problems[w.title], w))

    async def rollback(self, run: Run) -> None:
        state = getattr(run, "_previews_dashboard", None)
        if not state or not state.get("put"):
            return  # nothing was put: nothing to undo
        name, before = state["name"], state["before"]
        async with _aws(run) as aws:
            cw = await aws.client("cloudwatch")
            if before is None:
                run.mutate(f"delete the CloudWatch dashboard {name} (this run created it)",
                           "cloudwatch")
                await cw.delete_dashboards(DashboardNames=[name])
            else:
                run.mutate(f"put back the CloudWatch dashboard {name}'s old body",
                           "cloudwatch")
                await cw.put_dashboard(DashboardName=name, DashboardBody=before)


def _widget(problems: list[str], w: dashboard.Widget) -> Outcome:
    return outcome(not problems, widget=w.key, problems=problems)
