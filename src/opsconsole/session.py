"""A console session: inventory → probes → bus → state. TUI-free; the TUI and
headless commands both drive one of these."""

from __future__ import annotations

import aiohttp

from .config import Inventory
from .core.bus import EventBus
from .core.events import Note
from .core.state import State
from .errors import UserError
from .probes import ProbeRunner, build_probes


class ConsoleSession:
    def __init__(self, inventory: Inventory, *, lab_state_dir: str | None = None,
                 start_lab: bool = True, read_only: bool = False) -> None:
        self.inventory = inventory
        self.read_only = read_only or inventory.read_only
        self.bus = EventBus()
        self.state = State()
        self.bus.subscribe(self.state.apply)
        self.lab = None
        if inventory.lab is not None:
            from .lab import Lab

            self.lab = Lab(inventory.lab, state_dir=lab_state_dir)
        self.start_lab = start_lab
        self._http: aiohttp.ClientSession | None = None
        self.runner: ProbeRunner | None = None

    @property
    def target_name(self) -> str:
        return self.inventory.name

    async def start(self) -> None:
        """Bring the lab up if needed (errors become timeline entries), then probe."""
        inventory, credentials = self.inventory, None
        if self.lab is not None:
            from .lab.inventory import lab_aws_credentials, lab_inventory

            if self.start_lab:
                self.bus.publish(Note(text="lab: starting (or checking) the embedded lab"))
                try:
                    status = await self.lab.up()
                    self.bus.publish(Note(text=f"lab: up, state dir {status['state_dir']}"))
                except UserError as exc:
                    self.bus.publish(Note(text=str(exc), level="error"))
            inventory = lab_inventory(self.lab, self.inventory)
            credentials = lab_aws_credentials()
        self._http = aiohttp.ClientSession()
        self.runner = ProbeRunner(self.bus, build_probes(inventory, self._http, credentials))
        await self.runner.start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
        if self._http is not None:
            await self._http.close()
