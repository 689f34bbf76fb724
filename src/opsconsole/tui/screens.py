"""Secondary screens: event log, help, confirmation, scenario and fault pickers, and the
options form of a scenario."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    DataTable,
    Footer,
    Header,
    Input,
    Label,
    OptionList,
    Static,
)
from textual.widgets.option_list import Option

from ..catalog import CatalogEntry
from ..core.state import State
from ..scenarios.engine import Scenario
from ..scenarios.options import OptionField, fields_of, validate_options
from .fmt import clock

LEVEL_STYLE = {"info": "", "warn": "yellow", "error": "bold red"}


class EventLogScreen(Screen[None]):
    """Timeline of state changes, newest last; follows the tail."""

    BINDINGS = [Binding("escape,e", "app.pop_screen", "Back", id="event-log.back")]

    def __init__(self, state: State) -> None:
        super().__init__()
        self.state = state
        self._shown = 0

    def compose(self) -> ComposeResult:
        yield Header()
        table: DataTable = DataTable(id="timeline", cursor_type="row", zebra_stripes=True)
        table.border_title = "Event log"
        table.add_column("time (UTC)", key="ts")
        table.add_column("level", key="level")
        table.add_column("event", key="text")
        yield table
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_log()
        self.set_interval(0.5, self.refresh_log)

    def refresh_log(self) -> None:
        table = self.query_one(DataTable)
        entries = list(self.state.timeline)
        if len(entries) < self._shown:  # ring buffer wrapped: rebuild
            table.clear()
            self._shown = 0
        for entry in entries[self._shown:]:
            style = LEVEL_STYLE.get(entry.level, "")
            table.add_row(clock(entry.ts), Text(entry.level, style=style),
                          Text(entry.text, style=style))
        if len(entries) != self._shown:
            self._shown = len(entries)
            table.move_cursor(row=table.row_count - 1)


def key_of(screen: Screen, binding_id: str, default: str) -> str:
    """The effective key of a binding, as the footer shows it (the keymap may move it)."""
    keys_for = getattr(screen.app, "keys_for", None)
    return keys_for(binding_id, first=True) if keys_for else default


class HelpScreen(ModalScreen[None]):
    """Every binding with its effective keys (the keymap applied) and its id."""

    BINDINGS = [Binding("escape,question_mark,q", "app.pop_screen", "Close", id="help.close")]

    def __init__(self, rows: list[tuple[str, str, str]], keymap_file: str = "",
                 close_keys: str = "esc") -> None:
        super().__init__()
        self.rows = rows
        self.keymap_file = keymap_file
        self.close_keys = close_keys

    def compose(self) -> ComposeResult:
        table: DataTable = DataTable(cursor_type="none", id="help-table")
        table.add_columns("key", "action", "binding id")
        for row in self.rows:
            table.add_row(*row)
        with Vertical(id="dialog"):
            where = f" in {self.keymap_file}" if self.keymap_file else ""
            yield Label(f"Keys — remap any binding by its id{where}", id="help-title")
            yield table
            yield Label(f"{self.close_keys} closes this help.", classes="hint")


class ConfirmScreen(ModalScreen[bool]):
    BINDINGS = [Binding("y", "answer(True)", "Yes", id="confirm.yes"),
                Binding("n,escape", "answer(False)", "No", id="confirm.no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.question, id="question")
            with Horizontal(id="buttons"):
                yield Button(f"Yes ({key_of(self, 'confirm.yes', 'y')})", variant="error",
                             id="yes")
                yield Button(f"No ({key_of(self, 'confirm.no', 'n')})", variant="primary",
                             id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PickScreen(ModalScreen[str | None]):
    """Pick one item (a scenario, a fault kind, a target); says plainly when there is
    nothing to pick or when picking is not allowed."""

    BINDINGS = [Binding("escape", "dismiss_none", "Close", id="pick.close")]

    def __init__(self, title: str, items: list[tuple[str, str]], notice: str = "",
                 empty: str = "") -> None:
        super().__init__()
        self.title_text = title
        self.items = items
        self.notice = notice
        self.empty = empty or f"No {title.lower()} are registered yet."

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="catalog-title")
            if self.notice:
                yield Static(Text(self.notice, style="bold yellow"), id="catalog-notice")
            elif self.items:
                yield OptionList(*[Option(label, id=item_id) for item_id, label in self.items])
            else:
                yield Static(self.empty, id="catalog-empty")
            yield Label(f"Enter picks · {key_of(self, 'pick.close', 'esc')} closes",
                        classes="hint")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)


def catalog_items(entries: list[CatalogEntry]) -> list[tuple[str, str]]:
    return [(e.id, f"{e.id} — {e.title}") for e in entries]


def _shown(f: OptionField) -> str:
    """A default as the form shows it (none for "decided at run time" or a structure the
    description spells out, e.g. the 90/10 mix; a yes/no as true or false)."""
    if f.default is None or isinstance(f.default, tuple):
        return ""
    return str(f.default).lower() if f.is_switch else str(f.default)


class OptionsScreen(ModalScreen[dict[str, str] | None]):
    """The options form of one scenario, built from its options model: a field per option
    (text, as ``-o`` takes it: ``true``/``false`` for a yes/no one), each value validated
    by the model before the run starts; a bad value is shown in the form, which stays
    open."""

    BINDINGS = [Binding("ctrl+r", "run", "Run", id="options.run"),
                Binding("escape", "dismiss_none", "Cancel", id="options.close")]

    def __init__(self, scenario: Scenario) -> None:
        super().__init__()
        self.scenario = scenario
        self.fields: list[OptionField] = fields_of(scenario)

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"Options of {self.scenario.id}", id="options-title")
            with VerticalScroll(id="options-fields"):
                for f in self.fields:
                    with Horizontal(classes="option-row"):
                        yield Label(f.name, classes="option-name")
                        yield Input(value=_shown(f), compact=True, id=f"option-{f.name}",
                                    placeholder="true|false" if f.is_switch else f.metavar)
                        yield Label(f.help, classes="option-help")
            yield Static("", id="options-error")
            yield Label(f"{key_of(self, 'options.run', 'ctrl+r')} or Enter runs · "
                        f"{key_of(self, 'options.close', 'esc')} cancels", classes="hint")

    def on_mount(self) -> None:
        if self.fields:
            self.query_one(f"#option-{self.fields[0].name}", Input).focus()

    def values(self) -> dict[str, str]:
        """What the form holds: the options changed from the model's defaults, as text."""
        out: dict[str, str] = {}
        for f in self.fields:
            text = self.query_one(f"#option-{f.name}", Input).value.strip()
            if text != _shown(f):
                out[f.name] = text
        return out

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.action_run()

    def action_run(self) -> None:
        values = self.values()
        problem = validate_options(type(self.scenario), values)
        if problem:
            self.query_one("#options-error", Static).update(Text(problem, style="bold red"))
            return
        self.dismiss(values)

    def action_dismiss_none(self) -> None:
        self.dismiss(None)
