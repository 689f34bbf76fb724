"""NATS relay flow: per leaf, messages/s each way with sparklines."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import DataTable

from ...core.state import State
from ..fmt import DASH, count, rate, spark_text
from .base import Cell, Pane, sync_table

SPARK = 10  # points per sparkline: the pane must fit 78 columns


def _flow(last: float | None, points: list[tuple[float, float]],
          windows: list[tuple[float, float | None]]) -> Cell:
    """Rate and its recent history in one cell, e.g. ``158/s ▃▅▇███▇▆▅▅``; points
    recorded while a fault was active are marked."""
    if not points:
        return rate(last)
    return Text.assemble(f"{rate(last):>7} ", spark_text(points, windows, SPARK))


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
        windows = [(w.start, w.end) for w in state.fault_windows]
        for name in sorted(state.nats.leaves):
            view = state.nats.leaves[name]
            s = view.sample
            hub: Cell = s.hub or DASH
            if not s.reachable:
                hub = Text("unreachable", style="bold red")
            elif not s.hub:
                hub = Text("no hub link", style="bold red")
            rows[name] = [
                name, hub,
                _flow(view.to_local.rate.last, list(view.to_local.rate.points), windows),
                _flow(view.to_central.rate.last, list(view.to_central.rate.points), windows),
                count(view.lost), count(view.duplicated)]
        sync_table(self.query_one(DataTable), rows)
        self.border_subtitle = f"{len(rows)} leaves" if rows else DASH
