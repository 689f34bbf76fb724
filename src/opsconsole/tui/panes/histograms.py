"""Scale-test histograms: latency histogram, percentile ladder and throughput."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.widgets import Static

from ...core.events import LoadReport
from ...core.state import State
from .base import Pane

LADDER = ("p50", "p90", "p99", "p99.9", "max")
EMPTY = ("No scale test has run yet.\n\n"
         "Start one: press s and pick a load scenario, or run it headless with "
         "`opsconsole run <pack>.load`.\nLatency, percentiles and throughput appear here live.")


def render_report(report: LoadReport, bar_width: int = 28) -> RenderableType:
    status = "final" if report.final else f"running {report.elapsed_s:.0f} s"
    head = Text.assemble((report.scenario, "bold"), f"  ({status})\n",
                         f"throughput {report.throughput_rps:.0f} {report.unit} "
                         f"of {report.offered_rps:.0f} offered · ",
                         (f"errors {report.errors}", "red" if report.errors else "green"),
                         f" · {report.count} requests")
    ladder = Table.grid(padding=(0, 1))
    ladder.add_column(justify="right", style="bold")
    ladder.add_column(justify="right")
    for key in LADDER:
        value = report.percentiles.get(key)
        ladder.add_row(key, "—" if value is None else f"{value:.1f} ms")
    hist = Table.grid(padding=(0, 1))
    hist.add_column(justify="right")
    hist.add_column()
    hist.add_column(justify="right")
    top = max((c for _, c in report.buckets), default=0)
    for upper, n in report.buckets:
        bar = "█" * (round(n / top * bar_width) if top else 0)
        hist.add_row(f"≤{upper:g} ms", Text(bar, style="cyan"), f"{int(n)}")
    body = Table.grid(padding=(0, 3))
    body.add_row(ladder, hist)
    return Group(head, Text(""), body)


class HistogramPane(Pane):
    TITLE = "Scale-test histograms"
    PANE_ID = "pane-histograms"
    can_focus = True

    def compose(self) -> ComposeResult:
        yield Static(EMPTY, id="histogram-body")

    def render_state(self, state: State, now: float) -> None:
        body = self.query_one("#histogram-body", Static)
        if state.load is None:
            body.update(EMPTY)
            self.border_subtitle = "idle"
        else:
            body.update(render_report(state.load))
            self.border_subtitle = state.load.run_id
