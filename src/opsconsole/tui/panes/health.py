"""Cluster health: one row per NATS node and per Vault node."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable

from ...core.state import State
from ...core.system import Health
from ...systems.nats.health import node_health as nats_health
from ...systems.vault.health import node_health
from ..fmt import DASH, compact_size
from .base import Cell, Pane, sync_table

LEADER_HIGHLIGHT_S = 15.0
LAG_WARN = 10  # raft entries behind the leader before the lag is worth showing


def _health(h: Health) -> Text:
    """The system's answer in words, not only colours (the pane reads the same with
    NO_COLOR): "ok" when healthy, else the answer's own word."""
    if h.healthy:
        return Text("ok", style="green")
    return Text(h.health, style="bold red" if h.health.startswith(("unreachable", "SEALED"))
                else "yellow")


class ClusterHealthPane(Pane):
    TITLE = "Cluster health"
    PANE_ID = "pane-health"

    def compose(self) -> ComposeResult:
        table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
        for label, key in (("node", "node"), ("health", "health"), ("role", "role"),
                           ("sealed", "sealed"), ("links", "links"), ("conns", "conns"),
                           ("mem", "mem"), ("cpu", "cpu")):
            table.add_column(label, key=key)
        yield table

    def render_state(self, state: State, now: float) -> None:
        rows: dict[str, list[Cell]] = {}
        for name in sorted(state.nats.nodes):
            s = state.nats.nodes[name].sample
            h = nats_health(s)  # the one answer, shared with lab status
            rows[f"nats/{name}"] = [
                name, _health(h), h.role,
                DASH,
                f"{s.routes} routes" if s.reachable else DASH,
                str(s.connections) if s.reachable else DASH,
                compact_size(s.mem_bytes) if s.reachable else DASH,
                f"{s.cpu_percent:.0f}%" if s.reachable else DASH]
        peers = sum(1 for v in state.vault.nodes.values() if v.voter)
        recent = (state.vault.leader_changed_at is not None
                  and now - state.vault.leader_changed_at < LEADER_HIGHLIGHT_S)
        for name in sorted(state.vault.nodes):
            v = state.vault.nodes[name]
            if not v.reachable:
                role: Cell = DASH
            elif v.leader:
                role = Text("★ LEADER (new)" if recent else "★ leader",
                            style="bold black on yellow" if recent else "bold")
            else:
                role = "standby" if v.voter else "non-voter"
            sealed = DASH if v.sealed is None else ("SEALED" if v.sealed else "no")
            lag = f" lag {v.lag}" if v.lag and v.lag > LAG_WARN else ""
            verdict = node_health(v)  # the one answer, shared with the CLI and lab status
            health = _health(verdict)
            rows[f"vault/{name}"] = [
                name, health,
                role, sealed, f"{peers} voters{lag}" if v.voter else "not a voter",
                DASH, DASH, DASH]
        sync_table(self.query_one(DataTable), rows)
        leader = (f"vault leader: {state.vault.leader}" if state.vault.leader
                  else "vault leader: none")
        firing = state.vault.firing_alerts
        alerts = ("alerts: " + ", ".join(f"{a.name}({a.instance})" for a in firing[:3])
                  + (f" +{len(firing) - 3}" if len(firing) > 3 else "")) if firing \
            else "alerts: none firing"
        self.border_subtitle = f"{leader} · {alerts}"
        self.set_class(bool(firing), "-alerting")
