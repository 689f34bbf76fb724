"""The `sessions` pack on the lab, and the live sessions/containers counts in the console."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from opsconsole.lab import Lab
from opsconsole.systems.previews.config import PreviewsTarget
from opsconsole.systems.previews.events import SessionsSampled
from opsconsole.systems.previews.packs.sessions import NETWORK_CUT, THROTTLED
from opsconsole.systems.previews.probe import SessionsProbe

from ..helpers import run_cli, stop_process, wait_until
from ..tui.fixtures import idle_session, make_app, until

SCENARIOS = ["sessions.cold-start", "sessions.persistence", "sessions.concurrent",
             "sessions.routing", "sessions.failure-recovery", "sessions.monitoring"]


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
    costed = [r for r in results.values() if r["id"] != "sessions.monitoring"]
    assert all(r["metrics"]["estimated_cost_usd"] > 0 for r in costed)
    for r in costed:  # the stack's estimate within ±10 % of what ECS showed the pack
        [cost] = [c for c in r["checks"] if "cost predictability" in c["name"]]
        assert cost["status"] == "pass" and cost["evidence"]["observed"]["tasks"] >= 1, cost
    recovery = {c["name"]: c for c in results["sessions.failure-recovery"]["checks"]}
    throttled = recovery[THROTTLED]  # the burst rode real DynamoDB throttling …
    assert throttled["status"] == "pass" and throttled["evidence"]["throttled"] > 0, throttled
    orphans = recovery["failure-recovery: no orphaned tasks or sessions"]
    assert orphans["status"] == "pass", orphans  # … and still left no orphans
    assert recovery[NETWORK_CUT]["status"] == "pass", recovery[NETWORK_CUT]
    assert recovery[NETWORK_CUT]["evidence"]["during_cut"] == 502
    assert 0 < metrics["network_recovery_seconds"] < 5
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
        [sample] = await SessionsProbe(http, PreviewsTarget(
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


# ------------------------------------------------------------------ contract-only mode
@contextlib.contextmanager
def _reference_stack(lab: Lab, tmp_path: Path, prefix: str, *flags: str
                     ) -> Iterator[dict]:
    """A second reference stack on the lab's moto (its own resource prefix), with
    ``flags``; yields its stack.json (url, port); stopped and waited for at the end."""
    topo = lab.topology()
    assert topo is not None
    state = tmp_path / prefix
    cmd = [sys.executable, "-m", "opsconsole_lab.sessions", "--state-dir", str(state),
           "--aws-endpoint", topo.moto_url, "--region", lab.spec.aws_region, "--port", "0",
           "--prefix", prefix, "--idle-timeout", "8", "--poll-wait", "1",
           "--reconcile-interval", "0.5", "--metrics-interval", "1", *flags]
    with open(tmp_path / f"{prefix}.log", "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    try:
        info: dict = {}

        def up_or_exited() -> bool:
            with contextlib.suppress(FileNotFoundError, ValueError):
                info.update(json.loads((state / "stack.json").read_text()))
            return info.get("phase") == "up" or proc.poll() is not None

        wait_until(up_or_exited, 60, f"the {prefix} stack to come up", 0.1)
        assert info.get("phase") == "up", (tmp_path / f"{prefix}.log").read_text()[-2000:]
        yield info
    finally:
        stop_process(proc, 15)


def _seed_only_config(lab: Lab, path: Path, url: str, prefix: str) -> None:
    """A deployment described the way seed 001 describes one: the router and the AWS
    names, no optional capability (no exec hook, usage URL, capacity, metrics namespace)."""
    topo = lab.topology()
    assert topo is not None
    path.write_text("\n".join([
        'name = "seed-only"', "[aws]", f'region = "{lab.spec.aws_region}"',
        f'endpoint_url = "{topo.moto_url}"', "[previews]", f'base_url = "{url}"',
        f'cluster = "{prefix}"', 'services = ["edit"]', f'table = "{prefix}-sessions"',
        f'queue = "{prefix}-intake"']) + "\n")


AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
OPTIONAL = {"cold-start: file persisted (committed to git)": "git_log_command",
            THROTTLED: "fault_proxy_url", NETWORK_CUT: "embedded lab",
            "persistence: git history preserved": "git_log_command",
            "cold-start: the stack's CloudWatch metrics show the container":
                "metrics_namespace",
            "concurrent: capacity respected (peak ECS tasks)": "capacity",
            "failure-recovery: capacity respected under the burst (peak ECS tasks)":
                "capacity"}


def test_pack_in_contract_only_mode_has_no_fail(lab: Lab, tmp_path: Path) -> None:
    prefix = "oc-seedonly"
    with _reference_stack(lab, tmp_path, prefix, "--contract-only") as info:
        async def off() -> int:  # the control API really is off
            async with aiohttp.ClientSession() as http, \
                    http.get(info["url"] + "/api/status") as r:
                return r.status

        assert asyncio.run(off()) == 404
        config = tmp_path / "seed-only.toml"
        _seed_only_config(lab, config, info["url"], prefix)
        out = run_cli("run", "sessions", "--config", str(config), "--json",
                      "--report", str(tmp_path / "out"), env=AWS_ENV, timeout=600)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-3000:]
    results = json.loads(out.stdout)
    assert [r["id"] for r in results] == SCENARIOS
    checks = {c["name"]: c for r in results for c in r["checks"]}
    assert not [c for c in checks.values() if c["status"] in ("fail", "error")], checks
    for name, key in OPTIONAL.items():
        assert checks[name]["status"] == "unknown", checks[name]
        assert key in checks[name]["evidence"]["reason"], checks[name]
    cost = [c for n, c in checks.items() if "cost predictability" in n]
    assert cost and all(c["status"] == "unknown" for c in cost)  # no usage_url
    assert all("usage_url" in c["evidence"]["reason"] for c in cost)
    assert checks["monitoring: dashboard created"]["status"] == "unknown"  # no dashboard
    contract = [c for n, c in checks.items() if "contract" in n]
    assert len(contract) >= 3 + len(SCENARIOS) - 1  # sessions.monitoring speaks to AWS only
    assert all(c["status"] == "pass" for c in contract), contract
    for name in ("cold-start: session active in DynamoDB (get_item: status, user, TTL in "
                 "the future)", "cold-start: ECS runs the session's task (describe_services, "
                 "list_tasks)", "failure-recovery: a stopped ECS task is replaced, data kept",
                 "failure-recovery: no orphaned tasks or sessions",
                 "failure-recovery: the intake queue drained (SQS)"):
        assert checks[name]["status"] == "pass", checks[name]


def test_a_wrong_field_type_fails_the_named_contract_check(lab: Lab, tmp_path: Path) -> None:
    prefix = "oc-double"
    with _reference_stack(lab, tmp_path, prefix, "--contract-only", "--wrong-type") as info:
        config = tmp_path / "double.toml"
        _seed_only_config(lab, config, info["url"], prefix)
        out = run_cli("run", "sessions.routing", "--config", str(config), "--json",
                      "--report", str(tmp_path / "out"), env=AWS_ENV, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:] + out.stdout[-3000:]
    [result] = json.loads(out.stdout)
    checks = {c["name"]: c for c in result["checks"]}
    failed = [n for n, c in checks.items() if c["status"] == "fail"]
    assert set(failed) == {"routing: GET /api/health answers 200 per the contract",
                           "routing: every router answer conforms to the previews contract"}
    health = checks["routing: GET /api/health answers 200 per the contract"]["evidence"]
    assert health["operation"] == "GET /api/health"
    assert any(v.startswith("$.uptime_s: ") for v in health["violations"]), health


async def test_ecs_stop_task_refuses_a_task_that_is_not_the_services(lab: Lab,
                                                                      tmp_path: Path) -> None:
    """Negative control of ``ecs.stop-task``: only a RUNNING task of [previews] services."""
    from opsconsole.config import Inventory, LabSpec
    from opsconsole.errors import UserError
    from opsconsole.faults.ledger import FaultLedger
    from opsconsole.session import ConsoleSession

    s = ConsoleSession(Inventory(name="lab", lab=LabSpec()), lab_state_dir=str(lab.dir.root),
                       start_lab=False, probes=False, ledger=FaultLedger(tmp_path / "l.jsonl"))
    await s.start()
    try:
        bogus = "arn:aws:ecs:us-east-1:123456789012:task/opsconsole-sessions/nope"
        with pytest.raises(UserError, match="not a running task of the \\[previews\\]"):
            await s.faults.inject("ecs.stop-task", bogus)
        assert s.faults.ledger.open_records() == []
    finally:
        await s.stop()
