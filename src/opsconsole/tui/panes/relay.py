"""NATS relay flow: per leaf, messages/s each way with sparklines."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable

from ...core.state import State
from ..fmt import DASH, count, rate, sparkline
from .base import Cell, Pane, sync_table

SPARK = 10  # points per sparkline: the pane must fit 78 columns


def _flow(last: float | None, history: list[float]) -> str:
    """Rate and its recent history in one cell, e.g. ``158/s ▃▅▇███▇▆▅▅``."""
    return f"{rate(last):>7} {sparkline(history, SPARK)}" if history else rate(last)


class RelayPane(Pane):
    TITLE = "NATS relay flow"
    PANE_ID = "pane-relay"

    def compose(self) -> ComposeResult:
        table: DataTable = DataTable(cursor_type="row", zebra_stripes=True)
        for label, key in (("leaf", "leaf"), ("hub", "hub"), ("central→local", "in"),
                           ("local→central", "out"), ("lost", "lost"), ("dup", "dup")):
            table.add_column(label, key=key)
        yield table

    def render_state(self, state: State, now: float) -> None:
        rows: dict[str, list[Cell]] = {}
        for name in sorted(state.leaves):
            view = state.leaves[name]
            s = view.sample
            hub: Cell = s.hub or DASH
            if not s.reachable:
                hub = Text("unreachable", style="bold red")
            elif not s.hub:
                hub = Text("no hub link", style="bold red")
            rows[name] = [
                name, hub,
                _flow(view.to_local.rate.last, view.to_local.rate.values()),
                _flow(view.to_central.rate.last, view.to_central.rate.values()),
                count(view.lost), count(view.duplicated)]
        sync_table(self.query_one(DataTable), rows)
        self.border_subtitle = f"{len(rows)} leaves" if rows else DASH
