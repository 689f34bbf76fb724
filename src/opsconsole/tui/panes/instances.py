"""Vault instances: EC2 record plus local NATS / central link / manager health."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable

from ...core.state import State
from ...systems.previews.health import stack_health
from ...systems.vault_instances.health import instance_health
from ..fmt import DASH
from .base import Cell, Pane, sync_table

STATE_STYLE = {"running": "green", "pending": "yellow", "stopping": "yellow",
               "stopped": "red", "shutting-down": "red", "terminated": "dim"}


class InstancesPane(Pane):
    TITLE = "Vault instances"
    PANE_ID = "pane-instances"

    def compose(self) -> ComposeResult:
        table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
        for label, key in (("instance", "id"), ("owner", "owner"), ("state", "state"),
                           ("NATS", "local"), ("link", "link"),
                           ("manager", "manager"), ("last event", "last")):
            table.add_column(label, key=key)
        yield table

    def render_state(self, state: State, now: float) -> None:
        leaves_by_user = {v.sample.user: v.sample for v in state.nats.leaves.values()}
        rows: dict[str, list[Cell]] = {}
        gone = [i for i in state.vault_instances.instances.values() if i.state == "terminated"]
        for iid in sorted(state.vault_instances.instances):
            inst = state.vault_instances.instances[iid]
            if inst.state == "terminated":  # EC2 keeps these records; count them instead
                continue
            h = instance_health(inst, leaves_by_user.get(inst.owner))  # the one answer
            rows[iid] = [iid, inst.owner, Text(inst.state, style=STATE_STYLE.get(inst.state, "")),
                         h.detail["nats"], h.detail["link"], h.detail["manager"],
                         inst.last_event or DASH]
        sync_table(self.query_one(DataTable), rows)
        err = state.probe_errors.get("aws:instances")
        if err:
            self.border_subtitle = f"EC2: {err}"
        else:
            shown = f"{len(rows)} instances" if rows else "no instances found"
            self.border_subtitle = shown + (f" (+{len(gone)} terminated)" if gone else "") \
                + sessions_summary(state)


def sessions_summary(state: State) -> str:
    """`` · sessions 2 active, 1 starting · containers 2/4`` (empty without the stack)."""
    ss = state.previews.sample
    if ss is None:
        return ""
    h = stack_health(ss)  # the one answer
    if not ss.reachable:
        return " · sessions: unreachable"
    over = "" if h.healthy else f" · {h.health}"
    return f" · sessions {h.detail['sessions']} · containers {h.detail['containers']}{over}"
