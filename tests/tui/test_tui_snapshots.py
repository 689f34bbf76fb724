"""Pixel-for-pixel console snapshots on deterministic state (pytest-textual-snapshot).

Regenerate after an intended UI change: `pytest tests/tui/test_tui_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from opsconsole.systems.vault.events import VaultNodeSampled

from .fixtures import T0, healthy_cluster, idle_session, load_report, make_app


def _app_with_state(leader_change: bool = False):
    session = idle_session()
    healthy_cluster(session)
    session.bus.publish(load_report())
    if leader_change:
        session.bus.publish(VaultNodeSampled(ts=T0 + 1, name="vault-1", reachable=False,
                                             voter=True, reason="unreachable: timeout"))
        session.bus.publish(VaultNodeSampled(ts=T0 + 2, name="vault-2", reachable=True,
                                             initialized=True, sealed=False, standby=False,
                                             leader=True, voter=True))
    return make_app(session, now=T0 + 5)


def test_wide_console(snap_compare) -> None:
    assert snap_compare(_app_with_state(), terminal_size=(160, 48))


def test_leader_failover(snap_compare) -> None:
    assert snap_compare(_app_with_state(leader_change=True), terminal_size=(160, 48))


def test_narrow_console_becomes_tabs(snap_compare) -> None:
    assert snap_compare(_app_with_state(), terminal_size=(80, 24), press=["2"])
