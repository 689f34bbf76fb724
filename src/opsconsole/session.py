"""A console session: inventory → probes → bus → state, plus the fault manager.

TUI-free; the TUI and the headless commands (`run`, `heal`) drive one of these.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import aiohttp

from .config import Inventory
from .core.bus import EventBus
from .core.events import Note
from .core.state import State
from .errors import UserError
from .faults.kinds import FaultContext
from .faults.ledger import FaultLedger
from .faults.manager import FaultManager
from .probes import ProbeRunner, build_probes


class ConsoleSession:
    def __init__(self, inventory: Inventory, *, lab_state_dir: str | None = None,
                 start_lab: bool = True, read_only: bool = False, probes: bool = True,
                 ledger: FaultLedger | None = None, canaries: bool | None = None,
                 lab_timeout: float = 60.0) -> None:
        self.inventory = inventory
        self.resolved_inventory = inventory  # with the lab's targets once started
        self.read_only = read_only or inventory.read_only
        self.bus = EventBus()
        self.state = State()
        self.bus.subscribe(self.state.apply)
        self.lab = None
        if inventory.lab is not None:
            from .lab import Lab

            self.lab = Lab(inventory.lab, state_dir=lab_state_dir)
        self.start_lab = start_lab
        self.with_probes = probes
        self._ledger = ledger
        self.http: aiohttp.ClientSession | None = None
        self.runner: ProbeRunner | None = None
        self.faults: FaultManager | None = None
        self.aws_credentials: dict[str, str] | None = None
        self.recovered: list = []  # faults healed at start, left by crashed runs
        # Relay canaries need NATS access to both sides: on by default on the lab.
        self.with_canaries = (inventory.lab is not None) if canaries is None else canaries
        self.lab_error: str | None = None
        self.started_mono = time.monotonic()  # smoke's "time to all healthy" counts from here
        self.lab_timeout = lab_timeout
        self._forward_stack: contextlib.AsyncExitStack | None = None
        self.report_dir: Path | None = None  # set by the run recorder

    @property
    def target_name(self) -> str:
        return self.inventory.name

    def clock(self) -> float:
        """Now, for the UI (a replay session answers with the journal's time)."""
        return time.time()

    async def start(self) -> None:
        """Bring the lab up if needed, heal faults a crashed run left, then probe.

        Lab errors become timeline entries (the console stays useful without it);
        headless callers check ``lab_error``.
        """
        self.lab_error = None
        if self.lab is not None:
            from .lab.inventory import lab_aws_credentials, lab_inventory

            if self.start_lab:
                self.bus.publish(Note(text="lab: starting (or checking) the embedded lab"))
                try:
                    status = await self.lab.up(timeout=self.lab_timeout)
                    self.bus.publish(Note(text=f"lab: up, state dir {status['state_dir']}"))
                except UserError as exc:
                    self.lab_error = str(exc)
                    self.bus.publish(Note(text=str(exc), level="error"))
            self.resolved_inventory = lab_inventory(self.lab, self.inventory)
            self.aws_credentials = lab_aws_credentials()
        await self._open_forwards()
        self.http = aiohttp.ClientSession()
        ctx = FaultContext(self.resolved_inventory, self.http, self.lab, self.aws_credentials)
        self.faults = FaultManager(ctx, self.bus, ledger=self._ledger, read_only=self.read_only)
        self.recovered = []
        if not self.read_only:
            self.recovered = await self.faults.recover()
            for rec in self.recovered:
                self.bus.publish(Note(text=f"healed {rec.fault} on {rec.target} left by an "
                                      f"earlier run ({rec.id})", level="warn"))
            self.faults.start_watcher()
        if self.with_probes:  # relay canaries are probes too (they need both sides)
            canaries = self.with_canaries and self.lab_error is None
            self.runner = ProbeRunner(self.bus, build_probes(
                self.resolved_inventory, self.http, self.aws_credentials, canaries=canaries))
            await self.runner.start()

    async def _open_forwards(self) -> None:
        """Open every ``[[ssh.forwards]]`` for the session's lifetime, before the probes, so
        inventory endpoints at 127.0.0.1:<local_port> reach private NATS/Vault nodes."""
        if not self.inventory.ssh.forwards:
            return
        from .systems.ssh.forward import open_forwards

        self._forward_stack = contextlib.AsyncExitStack()
        try:
            bound = await self._forward_stack.enter_async_context(
                open_forwards(self.inventory.ssh))
        except UserError as exc:
            self.bus.publish(Note(text=str(exc), level="error"))
            return
        for fwd in bound.values():
            self.bus.publish(Note(text=f"ssh forward {fwd.name}: {fwd.address} → "
                                  f"{fwd.remote_host}:{fwd.remote_port} via {fwd.host}"))

    async def stop(self, heal: bool = True) -> None:
        """Stop probing; heal every fault this process still owns (Ctrl-C, quit)."""
        if self.faults is not None:
            await self.faults.stop_watcher()
            if heal and not self.read_only:
                for rec in await self.faults.open_records():
                    if rec.owner_alive() and rec.owner_pid == os.getpid():
                        await self.faults.heal(rec)
        if self.runner is not None:
            await self.runner.stop()
        if self.http is not None:
            await self.http.close()
        if self._forward_stack is not None:
            await self._forward_stack.aclose()
            self._forward_stack = None

