"""The console app: four live panes over a ConsoleSession (which knows nothing of Textual)."""

from __future__ import annotations

import time
import uuid

from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Container
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, Tab, Tabs

from .. import catalog
from ..core import system as system_registry
from ..core.results import ScenarioResult
from ..errors import UserError
from ..scenarios import resolve
from ..session import ConsoleSession
from ..settings import settings
from .keymap import Keymap, bindings, screen_owners
from .palette import ConsoleCommands
from .panes import PANES, Pane
from .screens import (
    ConfirmScreen,
    EventLogScreen,
    HelpScreen,
    OptionsScreen,
    PickScreen,
    catalog_items,
)

REFRESH_S = 0.25  # UI updates are batched: at most 4 per second
NARROW = (120, 32)  # below this many columns or rows the panes become tabs
READ_ONLY_REASON = "read-only mode: fault actions are refused (started with --read-only)"
READ_ONLY_SCENARIOS = ("read-only: what would change the target is refused — a mutating "
                       "scenario is refused up front, a mutating step reported unknown")


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
        # Textual's own palette binding, given an id so it can be remapped too.
        Binding(App.COMMAND_PALETTE_BINDING, "command_palette", "palette", show=False,
                priority=True, tooltip="Open the command palette", id="command_palette"),
    ]

    def __init__(self, session: ConsoleSession, *, start_session: bool = True,
                 show_clock: bool = True, now: float | None = None,
                 keymap: Keymap | None = None) -> None:
        super().__init__()
        self.session = session
        self.keymap = keymap or Keymap()
        self.set_keymap(self.keymap.keys)
        palette = self.keymap.keys.get("command_palette")
        if palette:  # the footer shows the palette key it finds under this name
            self.COMMAND_PALETTE_BINDING = palette.split(",")[0]
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
        for problem in system_registry.problems():  # a broken plugin is shown, not fatal
            self.notify(str(problem), title="Plugin not loaded", severity="warning",
                        timeout=30)
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
        changed = state.vault.leader_changed_at
        leader_fresh = changed is not None and now - changed < 20
        if state.version == self._seen_version and not leader_fresh:
            return
        self._seen_version = state.version
        for pane in self.panes:
            try:
                pane.render_state(state, now)
            except NoMatches:  # a tick during start-up or teardown: the pane has no body
                self._seen_version = -1  # render again on the next tick
        self._update_subtitle()

    def _update_subtitle(self) -> None:
        state = self.session.state
        parts = [f"faults active: {state.active_faults}"]
        progress = state.scenario
        if progress is not None and progress.status == "running":
            parts.append(f"▶ {progress.scenario} · {progress.phase}: {progress.step}")
        elif progress is not None:  # the last verdict stays in view (the same as the report's)
            parts.append(f"last {progress.scenario}: {progress.status.upper()}")
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
        self.push_screen(PickScreen("Scenarios", catalog_items(catalog.scenarios())),
                         self._picked_scenario)

    def action_faults(self) -> None:
        if self.session.read_only:
            self.notify(READ_ONLY_REASON, title="Faults refused", severity="warning")
            self.push_screen(PickScreen("Faults", [], notice=READ_ONLY_REASON))
            return
        self.push_screen(PickScreen("Faults", catalog_items(catalog.faults())),
                         self._picked_fault)

    def action_heal_all(self) -> None:
        if self.session.read_only:
            self.notify(READ_ONLY_REASON, title="Heal refused", severity="warning")
            return
        if self.session.faults is None:
            self.notify("The console is still starting.", title="Heal all")
            return
        self.heal_all()

    @work(exclusive=True, group="heal", exit_on_error=False)
    async def heal_all(self) -> None:
        assert self.session.faults is not None
        healed = await self.session.faults.heal_all()
        failed = [r for r in healed if r.status != "healed"]
        if not healed:
            self.notify("No active faults to heal.", title="Heal all")
        else:
            self.notify(f"Healed {len(healed) - len(failed)} of {len(healed)} fault(s).",
                        title="Heal all", severity="error" if failed else "information")

    def action_event_log(self) -> None:
        self.push_screen(EventLogScreen(self.session.state))

    def keys_for(self, binding_id: str, *, first: bool = False) -> str:
        """How the footer shows the effective key(s) of a binding (after the keymap)."""
        for _, group in [("console", type(self).BINDINGS), *screen_owners()]:
            for b in bindings(group):
                if b.id == binding_id:
                    shown = [self.get_key_display(e) for e in self.keymap.effective(b)]
                    return shown[0] if first else ", ".join(dict.fromkeys(shown))
        raise KeyError(binding_id)

    def action_help(self) -> None:
        rows = []
        for where, group in [("", type(self).BINDINGS), *screen_owners()]:
            for b in bindings(group):
                description = "Command palette" if b.id == "command_palette" else b.description
                rows.append((self.keys_for(b.id or ""),
                             f"{where.capitalize()}: {description}" if where else description,
                             b.id or ""))
        where = self.keymap.path or settings().keymap_file
        self.push_screen(HelpScreen(rows, keymap_file=str(where),
                                    close_keys=self.keys_for("help.close")))

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

    # ------------------------------------------------------- scenarios
    def launch_scenario(self, scenario_id: str, ask_options: bool = True) -> None:
        """Run a scenario or a pack; a single scenario that takes options opens its
        options form first (the defaults are one Enter away)."""
        if self.session.faults is None:
            self.notify("The console is still starting.", title="Scenario")
            return
        if self.session.read_only:  # the engine refuses what would change the target
            self.notify(f"{scenario_id}: {READ_ONLY_SCENARIOS}", title="Scenario (read-only)",
                        severity="warning")
        found = resolve(scenario_id)
        if ask_options and len(found) == 1 and found[0].Options.model_fields:

            def chosen(options: dict[str, str] | None) -> None:
                if options is not None:
                    self.run_scenario(scenario_id, options)

            self.push_screen(OptionsScreen(found[0]), chosen)
            return
        self.run_scenario(scenario_id)

    @work(exclusive=True, group="scenario", exit_on_error=False)
    async def run_scenario(self, scenario_id: str,
                           options: dict[str, str] | None = None) -> None:
        from ..core.verdict import not_passed
        from ..runner import RunRecorder, default_report_dir, overall, run_scenarios

        scenarios = resolve(scenario_id, options)
        run_id = uuid.uuid4().hex[:12]
        recorder = RunRecorder(self.session, run_id, default_report_dir(run_id))
        self.notify(f"{scenario_id} started (run {run_id})", title="Scenario")
        results: list[ScenarioResult] = []
        try:
            results = await run_scenarios(self.session, scenarios, run_id)
        finally:
            status, _ = overall(results, None)
            path = recorder.finish(results, status)
        severity = {"pass": "information", "unknown": "warning"}.get(status, "error")
        shown = recorder.journal.redactor.results(results)  # a reason may quote a secret
        missed = "".join(f"\n{st.upper()} {sid}: {why}" for st, sid, why in not_passed(shown))
        self.notify(f"{scenario_id}: {status.upper()} · report {path}{missed}",
                    title="Scenario", severity=severity, timeout=15)

    # ---------------------------------------------------------- faults
    def launch_fault(self, fault_id: str) -> None:
        if self.session.read_only:
            self.notify(READ_ONLY_REASON, title="Fault refused", severity="warning")
            return
        if self.session.faults is None:
            self.notify("The console is still starting.", title="Faults")
            return
        kind = self.session.faults.kind(fault_id)
        targets = kind.state_targets(self.session.faults.ctx, self.session.state)
        self.push_screen(PickScreen(f"Target for {fault_id}", [(t, t) for t in targets],
                                    empty="No targets in the inventory for this fault."),
                         lambda target: self._picked_target(fault_id, target))

    def _picked_target(self, fault_id: str, target: str | None) -> None:
        if not target:
            return
        assert self.session.faults is not None
        kind = self.session.faults.kind(fault_id)
        if not kind.destructive:
            self.inject_fault(fault_id, target, {})
            return

        def answered(yes: bool | None) -> None:
            if yes:  # the operator confirmed: the kind's confirmation parameters apply
                self.inject_fault(fault_id, target, dict(kind.confirmed_params))

        self.push_screen(ConfirmScreen(f"Inject {fault_id} on {target}? {kind.title}."),
                         answered)

    @work(group="faults", exit_on_error=False)
    async def inject_fault(self, fault_id: str, target: str, params: dict) -> None:
        assert self.session.faults is not None
        try:
            rec = await self.session.faults.inject(fault_id, target, params)
        except UserError as exc:
            self.notify(str(exc), title="Fault refused", severity="error")
            return
        heal = self.keys_for("heal-all", first=True)
        self.notify(f"{fault_id} on {target} ({rec.id}); {heal} heals it",
                    title="Fault injected", severity="warning")

    def _picked_scenario(self, scenario_id: str | None) -> None:
        if scenario_id:
            self.launch_scenario(scenario_id)

    def _picked_fault(self, fault_id: str | None) -> None:
        if fault_id:
            self.launch_fault(fault_id)
