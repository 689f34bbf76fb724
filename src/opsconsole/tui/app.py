"""The console app: four live panes over a ConsoleSession (which knows nothing of Textual)."""

from __future__ import annotations

import time

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.widgets import Footer, Header, Tab, Tabs

from .. import catalog
from ..session import ConsoleSession
from .palette import ConsoleCommands
from .panes import PANES, Pane
from .screens import CatalogScreen, ConfirmScreen, EventLogScreen, HelpScreen

REFRESH_S = 0.25  # UI updates are batched: at most 4 per second
NARROW = (120, 32)  # below this many columns or rows the panes become tabs
READ_ONLY_REASON = "read-only mode: fault actions are refused (started with --read-only)"


class OpsConsoleApp(App[None]):
    CSS_PATH = "console.tcss"
    TITLE = "opsconsole"
    COMMANDS = App.COMMANDS | {ConsoleCommands}
    BINDINGS = [
        Binding("1", "focus_pane(0)", "Health", id="pane.health"),
        Binding("2", "focus_pane(1)", "Relay", id="pane.relay"),
        Binding("3", "focus_pane(2)", "Instances", id="pane.instances"),
        Binding("4", "focus_pane(3)", "Histograms", id="pane.histograms"),
        Binding("s", "scenarios", "Scenarios", id="scenarios"),
        Binding("f", "faults", "Faults", id="faults"),
        Binding("H", "heal_all", "Heal all", id="heal-all"),
        Binding("e", "event_log", "Events", id="event-log"),
        Binding("question_mark", "help", "Help", id="help", key_display="?"),
        Binding("q", "quit_console", "Quit", id="quit"),
    ]

    def __init__(self, session: ConsoleSession, *, start_session: bool = True,
                 show_clock: bool = True, now: float | None = None) -> None:
        super().__init__()
        self.session = session
        self.start_session = start_session
        self.show_clock = show_clock
        self._fixed_now = now  # deterministic rendering for snapshot tests
        self._seen_version = -1
        self.active_pane = 0
        self.first_frame_at: float | None = None

    # ------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        yield Header(show_clock=self.show_clock)
        yield Tabs(*[Tab(f"{i + 1} {p.TITLE}", id=f"tab-{i}") for i, p in enumerate(PANES)],
                   id="pane-tabs")
        with Container(id="panes"):
            for pane_cls in PANES:
                yield pane_cls()
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"opsconsole — {self.session.target_name}"
        self._update_subtitle()
        self._apply_layout(self.size.width, self.size.height)
        self._mark_active()
        self.set_interval(REFRESH_S, self.refresh_panes)
        self.refresh_panes()
        if self.start_session:
            self.start_probes()
        self.call_after_refresh(self._first_frame)

    def _first_frame(self) -> None:
        self.first_frame_at = time.monotonic()

    @work(exclusive=True, exit_on_error=False, group="session")
    async def start_probes(self) -> None:
        await self.session.start()

    async def on_unmount(self) -> None:
        await self.session.stop()

    def on_resize(self, event: events.Resize) -> None:
        self._apply_layout(event.size.width, event.size.height)

    def _apply_layout(self, width: int, height: int) -> None:
        self.screen.set_class(width < NARROW[0] or height < NARROW[1], "narrow")

    @property
    def panes(self) -> list[Pane]:
        return list(self.query(Pane))

    # ----------------------------------------------------------- refresh
    def refresh_panes(self) -> None:
        """Re-render panes only when state changed (or a highlight may expire)."""
        state = self.session.state
        now = self._fixed_now or self.session.clock()
        leader_fresh = state.leader_changed_at is not None and now - state.leader_changed_at < 20
        if state.version == self._seen_version and not leader_fresh:
            return
        self._seen_version = state.version
        for pane in self.panes:
            pane.render_state(state, now)
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        parts = [f"faults active: {self.session.state.active_faults}"]
        if self.session.read_only:
            parts.append("READ-ONLY")
        self.sub_title = " · ".join(parts)

    # ----------------------------------------------------------- actions
    def action_focus_pane(self, index: int) -> None:
        self.active_pane = index
        self._mark_active()
        pane = self.panes[index]
        focus = next(iter(pane.query("DataTable")), pane)
        focus.focus()

    def _mark_active(self) -> None:
        for i, pane in enumerate(self.panes):
            pane.set_class(i == self.active_pane, "active")
        tabs = self.query_one(Tabs)
        if tabs.active != f"tab-{self.active_pane}":
            tabs.active = f"tab-{self.active_pane}"

    def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        index = int(event.tab.id.removeprefix("tab-")) if event.tab.id else 0
        if index != self.active_pane:
            self.action_focus_pane(index)

    def on_descendant_focus(self, event: events.DescendantFocus) -> None:
        for i, pane in enumerate(self.panes):
            if pane is event.widget or pane in event.widget.ancestors:
                if i != self.active_pane:
                    self.active_pane = i
                    self._mark_active()
                break

    def action_scenarios(self) -> None:
        self.push_screen(CatalogScreen("Scenarios", catalog.scenarios()), self._picked_scenario)

    def action_faults(self) -> None:
        if self.session.read_only:
            self.notify(READ_ONLY_REASON, title="Faults refused", severity="warning")
            self.push_screen(CatalogScreen("Faults", [], notice=READ_ONLY_REASON))
            return
        self.push_screen(CatalogScreen("Faults", catalog.faults()), self._picked_fault)

    def action_heal_all(self) -> None:
        if self.session.read_only:
            self.notify(READ_ONLY_REASON, title="Heal refused", severity="warning")
            return
        self.notify("No active faults to heal.", title="Heal all")

    def action_event_log(self) -> None:
        self.push_screen(EventLogScreen(self.session.state))

    def action_help(self) -> None:
        rows = [(b.key_display or b.key, b.description, b.id or "") for b in self.BINDINGS
                if isinstance(b, Binding)]
        rows.append(("ctrl+p", "Command palette", "command_palette"))
        self.push_screen(HelpScreen(rows))

    def action_quit_console(self) -> None:
        active = self.session.state.active_faults
        if not active:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(ConfirmScreen(f"{active} fault(s) are active and will be healed. "
                                       "Quit anyway?"), answered)

    def launch_scenario(self, scenario_id: str) -> None:
        self.notify(f"scenario {scenario_id}: the scenario engine is not built yet",
                    severity="warning")

    def launch_fault(self, fault_id: str) -> None:
        if self.session.read_only:
            self.notify(READ_ONLY_REASON, title="Fault refused", severity="warning")
            return
        self.notify(f"fault {fault_id}: the fault ledger is not built yet", severity="warning")

    def _picked_scenario(self, scenario_id: str | None) -> None:
        if scenario_id:
            self.launch_scenario(scenario_id)

    def _picked_fault(self, fault_id: str | None) -> None:
        if fault_id:
            self.launch_fault(fault_id)
