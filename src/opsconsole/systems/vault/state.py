"""The Vault slice of the console state: every node's last sample, the leader, alerts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...core.system import Slice
from .events import AlertChanged, VaultNodeSampled

if TYPE_CHECKING:
    from ...core.state import State


@dataclass
class VaultSlice(Slice):
    """``state.vault``: nodes by name, the leader (None while there is not exactly one)."""

    nodes: dict[str, VaultNodeSampled] = field(default_factory=dict)
    leader: str | None = None
    last_leader: str | None = None  # survives leaderless gaps, to name the change
    leader_changed_at: float | None = None  # set on a change, not on the first leader seen
    alerts: dict[str, AlertChanged] = field(default_factory=dict)  # pending/firing, by key

    def on_node(self, state: State, ev: VaultNodeSampled) -> None:
        old = self.nodes.get(ev.name)
        if old is not None:
            was_ok = old.reachable and not old.sealed
            now_ok = ev.reachable and not ev.sealed
            if was_ok and not now_ok:
                why = ev.reason if not ev.reachable else "sealed"
                state.note(ev.ts, f"Vault {ev.name} down: {why}", "error")
            elif now_ok and not was_ok:
                state.note(ev.ts, f"Vault {ev.name} back", "info")
        self.nodes[ev.name] = ev
        leaders = [n for n, s in self.nodes.items() if s.reachable and s.leader]
        leader = leaders[0] if len(leaders) == 1 else None
        if leader == self.leader:
            return
        if leader is None:
            state.note(ev.ts, f"Vault has no leader (was {self.leader})", "error")
        elif self.last_leader not in (None, leader):
            state.note(ev.ts, f"Vault leader changed {self.last_leader} → {leader}", "warn")
            self.leader_changed_at = ev.ts
        self.leader = leader
        if leader is not None:
            self.last_leader = leader

    def on_alert(self, state: State, ev: AlertChanged) -> None:
        key = f"{ev.name}/{ev.instance}"
        if ev.state == "resolved":
            if self.alerts.pop(key, None) is not None:
                state.note(ev.ts, f"alert {ev.name} resolved ({ev.instance})")
            return
        if ev.state == "firing":
            state.note(ev.ts, f"alert {ev.name} FIRING: {ev.summary}",
                      "error" if ev.severity == "critical" else "warn")
        self.alerts[key] = ev

    @property
    def firing_alerts(self) -> list[AlertChanged]:
        return sorted((a for a in self.alerts.values() if a.state == "firing"),
                      key=lambda a: (a.severity != "critical", a.name, a.instance))



VaultSlice.handlers = {VaultNodeSampled: VaultSlice.on_node, AlertChanged: VaultSlice.on_alert}
