"""The console reacts to state and keys the way an operator expects."""

from __future__ import annotations

from rich.console import Console
from textual.widgets import DataTable, Static

from opsconsole.config import Inventory
from opsconsole.core.events import FaultInjected, Note
from opsconsole.lab.ports import free_ports
from opsconsole.session import ConsoleSession
from opsconsole.systems.nats.config import NatsCluster, NatsNode
from opsconsole.systems.vault.config import VaultCluster, VaultNode
from opsconsole.systems.vault.events import VaultNodeSampled
from opsconsole.tui.app import READ_ONLY_REASON, OpsConsoleApp
from opsconsole.tui.screens import ConfirmScreen, EventLogScreen, HelpScreen, PickScreen

from .fixtures import (
    T0,
    healthy_cluster,
    idle_session,
    load_report,
    make_app,
    refreshed,
    session_with_faults,
    until,
)

TITLES = ["Cluster health", "NATS relay flow", "Vault instances", "Scale-test histograms"]


def _cells(app: OpsConsoleApp, pane_id: str) -> dict[str, list[str]]:
    table = app.query_one(f"#{pane_id} DataTable", DataTable)
    return {key.value: [str(c) for c in table.get_row(key)] for key in table.rows}


async def test_panes_have_exact_titles_and_render_injected_state() -> None:
    session = idle_session()
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        assert [p.border_title for p in app.panes] == TITLES
        healthy_cluster(session)
        await refreshed(pilot, app)  # the next refresh tick (≤ 4 Hz batching)
        health = _cells(app, "pane-health")
        assert set(health) == {"nats/nats-1", "nats/nats-2", "nats/nats-3",
                               "vault/vault-1", "vault/vault-2", "vault/vault-3"}
        leaders = [k for k, row in health.items() if "★" in row[2]]
        assert leaders == ["vault/vault-1"]
        assert health["nats/nats-2"][2] == "JS leader"
        relay = _cells(app, "pane-relay")
        assert relay["leaf-u1"][1] == "nats-1"
        assert "/s " in relay["leaf-u1"][2] and relay["leaf-u1"][4] == "—"
        instances = _cells(app, "pane-instances")
        assert instances["i-000000000000"][3:5] == ["ok", "→nats-1"]


async def test_leader_change_is_highlighted_and_dead_node_unreachable() -> None:
    session = idle_session()
    app = make_app(session, now=T0 + 3)
    async with app.run_test(size=(160, 48)) as pilot:
        healthy_cluster(session, leader="vault-1")
        await refreshed(pilot, app)
        assert "(new)" not in _cells(app, "pane-health")["vault/vault-1"][2]
        session.bus.publish(VaultNodeSampled(ts=T0 + 1, name="vault-1", reachable=False,
                                             voter=True, reason="unreachable: timeout"))
        session.bus.publish(VaultNodeSampled(ts=T0 + 2, name="vault-2", reachable=True,
                                             initialized=True, sealed=False, standby=False,
                                             leader=True, voter=True))
        await refreshed(pilot, app)
        health = _cells(app, "pane-health")
        assert health["vault/vault-1"][1].startswith("unreachable")
        assert "LEADER (new)" in health["vault/vault-2"][2]
        texts = [e.text for e in session.state.timeline]
        assert "Vault leader changed vault-1 → vault-2" in texts


async def test_number_keys_focus_panes_and_tabs_when_narrow() -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        for key, pane_id in [("2", "pane-relay"), ("4", "pane-histograms"),
                             ("1", "pane-health"), ("3", "pane-instances")]:
            await pilot.press(key)
            pane = app.query_one(f"#{pane_id}")
            assert app.focused is pane or pane in app.focused.ancestors, (key, app.focused)
        assert not app.screen.has_class("narrow")
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        assert app.screen.has_class("narrow")
        assert app.query_one("#pane-tabs").display
        await pilot.press("2")
        shown = [p.id for p in app.panes if p.display]
        assert shown == ["pane-relay"]


async def test_read_only_refuses_faults_with_a_visible_reason() -> None:
    app = make_app(idle_session(read_only=True))
    async with app.run_test(size=(160, 48)) as pilot:
        assert "READ-ONLY" in app.sub_title
        await pilot.press("f")
        assert isinstance(app.screen, PickScreen)
        assert READ_ONLY_REASON in str(app.screen.query_one("#catalog-notice", Static).render())
        await pilot.press("escape")
        await pilot.press("H")
        messages = [n.message for n in app._notifications]
        assert messages.count(READ_ONLY_REASON) == 2
        app.launch_fault("lab.kill-node")
        await pilot.pause()
        assert [n.message for n in app._notifications].count(READ_ONLY_REASON) == 3


async def test_quit_asks_for_confirmation_when_faults_are_active() -> None:
    session = idle_session()
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        for i in range(2):
            session.bus.publish(FaultInjected(fault_id=f"f-{i}", fault="process.pause",
                                              target=f"nats-{i + 1}"))
        await refreshed(pilot, app)
        assert "faults active: 2" in app.sub_title
        await pilot.press("q")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert not isinstance(app.screen, ConfirmScreen) and app.is_running
        await pilot.press("q", "y")
        await pilot.pause()
        assert not app.is_running


async def test_quit_without_faults_exits_at_once() -> None:
    app = make_app()
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_event_log_help_and_histogram() -> None:
    session = idle_session()
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        body = app.query_one("#histogram-body", Static)
        assert "No scale test has run yet" in str(body.content)
        session.bus.publish(load_report())
        session.bus.publish(Note(ts=T0, text="operator note", level="warn"))
        await refreshed(pilot, app)
        assert app.query_one("#pane-histograms").border_subtitle == "run-1"
        console = Console(width=100, record=True)
        console.print(body.content)
        text = console.export_text()
        assert "vault-ha.load" in text and "499 req/s of 500 offered" in text
        for rung in ("p50", "p90", "p99", "p99.9", "max", "8.9 ms", "40.2 ms", "≤64 ms"):
            assert rung in text, rung
        await pilot.press("e")
        assert isinstance(app.screen, EventLogScreen)

        def logged() -> list[str]:
            table = app.screen.query_one(DataTable)
            return [str(table.get_row_at(i)[2]) for i in range(table.row_count)]

        await until(pilot, lambda: "operator note" in logged(), "the event log to list the note")
        rows = logged()
        assert any(r.startswith("load vault-ha.load finished") for r in rows)
        await pilot.press("escape", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        ids = [str(app.screen.query_one(DataTable).get_row_at(i)[2])
               for i in range(app.screen.query_one(DataTable).row_count)]
        assert {"pane.health", "scenarios", "faults", "heal-all", "event-log", "help",
                "quit"} <= set(ids)


async def test_console_stays_responsive_when_every_target_is_down() -> None:
    """Same view as a lab stopped under the console: nothing listens on these ports."""
    ports = free_ports(6)
    inv = Inventory(name="dead", nats=[NatsCluster(name="central", nodes=[
        NatsNode(name=f"nats-{i}", client_url=f"nats://127.0.0.1:{ports[i]}",
                 monitor_url=f"http://127.0.0.1:{ports[i]}") for i in range(3)])],
        vault=VaultCluster(nodes=[VaultNode(name=f"vault-{i}",
                                            api_addr=f"http://127.0.0.1:{ports[3 + i]}")
                                  for i in range(3)]))
    session = ConsoleSession(inv)
    app = OpsConsoleApp(session, show_clock=False)
    async with app.run_test(size=(160, 48)) as pilot:
        def every_node_unreachable() -> bool:
            health = _cells(app, "pane-health") if app.query("#pane-health DataTable") else {}
            return len(health) == 6 and all(r[1].startswith("unreachable") for r in health.values())

        await until(pilot, every_node_unreachable, "every node shown unreachable", 20)
        await pilot.press("2")
        assert app.query_one("#pane-relay") in app.focused.ancestors
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_read_only_refuses_a_mutating_scenario_visibly_as_headless(
        monkeypatch, tmp_path) -> None:
    """The same refusal as `run --read-only`: unknown with what it would change, shown in
    the notification and the state; nothing injected, nothing run."""
    from opsconsole import runner

    monkeypatch.setattr(runner, "default_report_dir", lambda run_id: tmp_path / run_id)
    session = session_with_faults(tmp_path, read_only=True)
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("s")
        assert isinstance(app.screen, PickScreen)
        assert "vault-instance.terminate" in [o for o, _ in app.screen.items]
        app.screen.dismiss("vault-instance.terminate")
        await until(pilot, lambda: session.state.scenario is not None
                    and session.state.scenario.status == "unknown", "the verdict")
        await until(pilot, lambda: any("UNKNOWN ·" in n.message for n in app._notifications),
                    "the verdict notification")
        shown = next(n.message for n in app._notifications if "UNKNOWN ·" in n.message)
        assert "read-only: refused up front, it would" in shown
        assert "terminate it: EC2, security group, NATS credentials" in shown
        assert session.state.active_faults == 0
        assert session.faults is not None and await session.faults.open_records() == []


def test_sparkline_marks_points_inside_fault_windows() -> None:
    from opsconsole.tui.fmt import spark_text

    points = [(100.0 + i, float(i)) for i in range(10)]
    text = spark_text(points, [(103.0, 105.0), (108.0, None)], width=10)
    marked = [i for i in range(10) if any(s.start <= i < s.end and "red" in str(s.style)
                                          for s in text.spans)]
    assert marked == [3, 4, 5, 8, 9]


async def test_replay_shows_a_recorded_run(tmp_path) -> None:
    from opsconsole.replay import ReplaySession
    from opsconsole.report.journal import Journal

    journal = Journal(tmp_path / "journal.jsonl")
    session = idle_session()
    session.bus.subscribe(journal.append)
    healthy_cluster(session)
    journal.close()
    replay = ReplaySession(tmp_path / "journal.jsonl", speed=1000)
    app = OpsConsoleApp(replay, show_clock=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await replay.finished.wait()
        await refreshed(pilot, app)
        assert "vault/vault-1" in _cells(app, "pane-health")
        assert "replay of" in app.title
        await pilot.press("f")
        assert READ_ONLY_REASON in str(app.screen.query_one("#catalog-notice", Static).render())


async def test_relay_pane_shows_canary_loss_once_canaries_report() -> None:
    from opsconsole.systems.nats.events import CanaryReport

    session = idle_session()
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        healthy_cluster(session)
        await refreshed(pilot, app)
        assert _cells(app, "pane-relay")["leaf-u1"][4:6] == ["—", "—"]  # no canary yet
        for path, lost in (("c2l", 3), ("l2c", 2)):
            session.bus.publish(CanaryReport(ts=T0 + 9, leaf="leaf-u1", path=path, sent=100,
                                             delivered=95, lost=lost, duplicated=1,
                                             reordered=0, settled=90))
        await refreshed(pilot, app)
        assert _cells(app, "pane-relay")["leaf-u1"][4:6] == ["5", "2"]
        assert _cells(app, "pane-relay")["leaf-u2"][4:6] == ["—", "—"]
