"""The `sessions` pack on the lab, and the live sessions/containers counts in the console."""

from __future__ import annotations

import json

import aiohttp

from opsconsole.lab import Lab
from opsconsole.systems.previews.config import SessionsTarget
from opsconsole.systems.previews.events import SessionsSampled
from opsconsole.systems.previews.probe import SessionsProbe

from ..helpers import run_cli
from ..tui.fixtures import idle_session, make_app, until

SCENARIOS = ["sessions.cold-start", "sessions.persistence", "sessions.concurrent",
             "sessions.routing", "sessions.failure-recovery"]


def test_sessions_pack_passes_with_its_metrics_in_the_report(lab: Lab, tmp_path) -> None:
    report = tmp_path / "out"
    out = run_cli("run", "sessions", "--report", str(report), "--json",
                  "--state-dir", str(lab.dir.root), timeout=600)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-3000:]
    results = {r["id"]: r for r in json.loads(out.stdout)}
    assert list(results) == SCENARIOS
    metrics = {k: v for r in results.values() for k, v in r["metrics"].items()}
    assert metrics["cold_start_seconds"] < 60 and metrics["warm_start_seconds"] < 5
    assert metrics["health_check_seconds"] < 30 and metrics["file_persist_seconds"] < 2
    idle = lab.spec.sessions_idle_timeout_s
    assert idle <= metrics["auto_shutdown_seconds"] < idle + 30
    assert metrics["orphans"] == 0 and 0 < metrics["burst_success_rate"] <= 1
    assert all(r["metrics"]["estimated_cost_usd"] > 0 for r in results.values())
    md = (report / "report.md").read_text()
    for name in ("cold_start_seconds", "warm_start_seconds", "auto_shutdown_seconds",
                 "estimated_cost_usd", "list prices as of 20"):
        assert name in md, name
    transcript = json.loads((report / "transcript.json").read_text())
    assert [s["id"] for s in transcript["scenarios"]] == SCENARIOS
    assert run_cli("verify", str(report / "transcript.json")).returncode == 0


async def test_the_console_reads_sessions_and_container_counts_from_the_stack(
        lab: Lab) -> None:
    async with aiohttp.ClientSession() as http:
        [sample] = await SessionsProbe(http, SessionsTarget(
            base_url=lab.topology().sessions_url)).sample()
    assert isinstance(sample, SessionsSampled) and sample.reachable
    assert sample.max_capacity == lab.spec.sessions_capacity
    assert set(sample.sessions) >= {"active", "expired"}

    session = idle_session()
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        session.bus.publish(SessionsSampled(reachable=True, running=2, desired=2,
                                            max_capacity=4,
                                            sessions={"active": 2, "starting": 1}))
        pane = app.query_one("#pane-instances")
        await until(pilot, lambda: "containers" in str(pane.border_subtitle), "the counts")
        subtitle = str(pane.border_subtitle)
        assert "sessions 2 active, 1 starting · containers 2/4" in subtitle
        session.bus.publish(SessionsSampled(reachable=True, running=0, max_capacity=4,
                                            sessions={"expired": 3}))
        await until(pilot, lambda: "containers 0/4" in str(pane.border_subtitle),
                    "the scale-down")
        assert "containers 0/4" in str(pane.border_subtitle)
        assert any("scaled down to 0/4" in e.text for e in session.state.timeline)
