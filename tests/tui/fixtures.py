"""Deterministic state for pilot and snapshot tests: fixed timestamps, no clock."""

from __future__ import annotations

from opsconsole.config import Inventory
from opsconsole.core.events import LoadReport
from opsconsole.session import ConsoleSession
from opsconsole.systems.nats.events import LeafSampled, NatsNodeSampled
from opsconsole.systems.vault.events import VaultNodeSampled
from opsconsole.systems.vault_instances.events import InstanceSampled
from opsconsole.tui.app import OpsConsoleApp

T0 = 1_800_000_000.0  # a fixed instant; panes render UTC clock times from it


def idle_session(read_only: bool = False) -> ConsoleSession:
    """A session with no targets: nothing is probed, tests publish events themselves."""
    return ConsoleSession(Inventory(name="pilot"), read_only=read_only)


def session_with_faults(tmp_path, read_only: bool = False) -> ConsoleSession:
    """An idle session with a fault manager on a ledger of its own (scenarios can run)."""
    from opsconsole.faults import FaultContext, FaultLedger, FaultManager

    session = idle_session(read_only)
    session.faults = FaultManager(FaultContext(session.inventory, None),  # type: ignore[arg-type]
                                  session.bus, ledger=FaultLedger(tmp_path / "faults.jsonl"))
    return session


def app_with_pack(monkeypatch, tmp_path, classes: list) -> tuple[ConsoleSession, OpsConsoleApp]:
    """A console whose pack ``unit`` holds ``classes``, able to run them, its reports
    under ``tmp_path``."""
    from opsconsole import runner
    from opsconsole import scenarios as scenario_registry

    monkeypatch.setitem(scenario_registry.PACKS, "unit", classes)
    monkeypatch.setattr(runner, "default_report_dir", lambda run_id: tmp_path / run_id)
    session = session_with_faults(tmp_path)
    return session, make_app(session)


def make_app(session: ConsoleSession | None = None, **kw) -> OpsConsoleApp:
    return OpsConsoleApp(session or idle_session(), start_session=False, show_clock=False,
                         now=kw.pop("now", T0 + 10), **kw)


def healthy_cluster(session: ConsoleSession, leader: str = "vault-1", ts: float = T0) -> None:
    bus = session.bus
    for i, name in enumerate(["nats-1", "nats-2", "nats-3"]):
        bus.publish(NatsNodeSampled(ts=ts, name=name, reachable=True, healthy=True,
                                    connections=3 + i, routes=2, leafnodes=1,
                                    in_msgs=1000 * (i + 1), out_msgs=900 * (i + 1),
                                    mem_bytes=(20 + i) * 2**20, cpu_percent=1.0 + i,
                                    js_meta_leader="nats-2"))
    for name in ["vault-1", "vault-2", "vault-3"]:
        bus.publish(VaultNodeSampled(ts=ts, name=name, reachable=True, initialized=True,
                                     sealed=False, standby=name != leader, version="2.7.2",
                                     leader=name == leader, voter=True, lag=0))
    for k, (user, hub) in enumerate([("u1", "nats-1"), ("u2", "nats-3")]):
        for step in range(6):
            bus.publish(LeafSampled(ts=ts + step, name=f"leaf-{user}", user=user,
                                    reachable=True, healthy=True, hub=hub, connections=1,
                                    to_local_msgs=step * step * 10 * (k + 1),
                                    to_central_msgs=step * 5 * (k + 1)))
        bus.publish(InstanceSampled(ts=ts, instance_id=f"i-00000000000{k}", owner=user,
                                    state="running", instance_type="t4g.nano", arch="arm64"))


def load_report(final: bool = True) -> LoadReport:
    return LoadReport(ts=T0 + 5, run_id="run-1", scenario="vault-ha.load", final=final,
                      elapsed_s=30, offered_rps=500, throughput_rps=498.7, errors=0,
                      count=14961,
                      percentiles={"p50": 2.1, "p90": 3.4, "p99": 8.9, "p99.9": 21.0,
                                   "max": 40.2},
                      buckets=[[1, 1200], [2, 6100], [4, 5400], [8, 1900], [16, 300],
                               [32, 50], [64, 11]])


async def until(pilot, cond, what: str, timeout: float = 5.0) -> None:
    """Let the app run until ``cond()`` holds (its ≤ 4 Hz refresh applied the state)."""
    import time

    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


async def refreshed(pilot, app: OpsConsoleApp, timeout: float = 10.0) -> None:
    """Until the panes show the state as it is now (a ≤ 4 Hz refresh rendered it)."""
    await until(pilot, lambda: app._seen_version == app.session.state.version,
                "the panes to render the latest state", timeout)
