"""`opsconsole demo`: the console with a narration bar driving :mod:`opsconsole.demo`."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer, Static

from ..demo import Demo
from ..session import ConsoleSession
from .app import OpsConsoleApp

STATUS_STYLE = {"pending": "dim", "running": "bold yellow", "pass": "bold green",
                "fail": "bold red"}


class DemoApp(OpsConsoleApp):
    BINDINGS = [*OpsConsoleApp.BINDINGS,
                Binding("n", "next_step", "Next step", id="demo.next", priority=True)]

    def __init__(self, session: ConsoleSession, *, auto: bool = False, hold_s: float = 3.0,
                 report_dir: Path | None = None, **kw) -> None:
        super().__init__(session, **kw)
        self.auto = auto
        self.hold_s = hold_s
        self.report_dir = report_dir
        self.demo: Demo | None = None
        self.current = -1  # index of the step shown
        self.busy = False

    def compose(self) -> ComposeResult:
        for widget in super().compose():
            if isinstance(widget, Footer):  # the narration sits just above the key bar
                yield Static("Starting the lab…", id="demo-narration")
            yield widget

    def on_mount(self) -> None:
        super().on_mount()
        self.drive()

    @work(exclusive=True, group="demo", exit_on_error=False)
    async def drive(self) -> None:
        deadline = asyncio.get_running_loop().time() + 180
        while self.session.faults is None:  # the session starts in its own worker
            if asyncio.get_running_loop().time() > deadline:
                self._narrate(Text("The console did not start (see the event log).",
                                   style="bold red"))
                return
            await asyncio.sleep(0.2)
        self.demo = Demo(self.session, report_dir=self.report_dir)
        self.current = 0
        self._render()
        if self.auto:
            for i in range(len(self.demo.steps)):
                await self._run(i)
                await asyncio.sleep(self.hold_s)
            self.exit(return_code=0 if self.demo.passed else 1)

    def action_next_step(self) -> None:
        if self.demo is None or self.busy or self.auto:
            return
        if self.demo.results[self.current].status == "pending":
            self.step_worker(self.current)
        elif self.current + 1 < len(self.demo.steps):
            self.current += 1
            self.step_worker(self.current)
        else:
            self.exit(return_code=0 if self.demo.passed else 1)

    @work(exclusive=True, group="demo-step", exit_on_error=False)
    async def step_worker(self, index: int) -> None:
        await self._run(index)

    async def _run(self, index: int) -> None:
        assert self.demo is not None
        self.busy, self.current = True, index
        self._render()
        await self.demo.run_step(index)  # the panes keep refreshing on their own timer
        self.busy = False
        self._render()

    def _render(self) -> None:
        demo = self.demo
        if demo is None or self.current < 0:
            return
        step, res = demo.steps[self.current], demo.results[self.current]
        text = Text()
        text.append(f"Step {self.current + 1}/{len(demo.steps)} · {step.title}  ", "bold")
        text.append(f"[{res.status}]", STATUS_STYLE.get(res.status, ""))
        if demo.verified is not None:
            text.append("  REPORT VERIFIED" if demo.verified else "  REPORT NOT VERIFIED",
                        "bold green" if demo.verified else "bold red")
            text.append(f" · {demo.report_dir}")
        text.append(f"\n{step.narration}\n")
        if res.detail:
            text.append(res.detail + "\n", STATUS_STYLE.get(res.status, ""))
        if self.auto:
            text.append("auto mode: steps advance by themselves", "dim")
        elif res.status in ("pending",):
            text.append(f"press {self.keys_for('demo.next', first=True)} to run this step",
                        "dim")
        elif not self.busy:
            last = self.current + 1 == len(demo.steps)
            key = self.keys_for("demo.next", first=True)
            text.append(f"press {key} to finish" if last else f"press {key} for the next step",
                        "dim")
        self._narrate(text)

    def _narrate(self, text: Text) -> None:
        self.query_one("#demo-narration", Static).update(text)

    async def on_unmount(self) -> None:
        if self.demo is not None:
            self.demo.close()
        await super().on_unmount()
