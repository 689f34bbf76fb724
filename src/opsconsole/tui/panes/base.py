"""Pane base class and the in-place DataTable sync every table pane uses."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import DataTable

from ...core.state import State

Cell = str | Text


class Pane(Vertical):
    """A titled, focusable region that re-renders from state when asked."""

    TITLE: ClassVar[str] = ""
    PANE_ID: ClassVar[str] = ""

    def __init__(self) -> None:
        super().__init__(id=self.PANE_ID, classes="pane")
        self.border_title = self.TITLE

    def render_state(self, state: State, now: float) -> None:
        raise NotImplementedError


def sync_table(table: DataTable, rows: dict[str, list[Cell]]) -> None:
    """Update ``table`` in place so the cursor and scroll survive refreshes."""
    columns = list(table.columns.keys())
    existing = {key.value for key in table.rows}
    for stale in existing - rows.keys():
        table.remove_row(stale)
    for key, cells in rows.items():
        if key in existing:
            for col, value in zip(columns, cells, strict=True):
                table.update_cell(key, col, value, update_width=True)
        else:
            table.add_row(*cells, key=key)
