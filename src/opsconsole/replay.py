"""Replay: feed a run's journal back into a bus, at its recorded pace times speed.

Duck-types the parts of ConsoleSession the TUI uses; read-only by nature.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

from .core.bus import EventBus
from .core.events import Note
from .core.state import State
from .report.journal import read_events, verify_chain

MAX_GAP_S = 5.0  # idle stretches longer than this (real time) are shortened


class ReplaySession:
    read_only = True
    lab = None
    faults = None

    def __init__(self, journal: Path, speed: float = 1.0) -> None:
        self.journal = journal
        self.speed = speed
        self.bus = EventBus()
        self.state = State()
        self.bus.subscribe(self.state.apply)
        self._now: float | None = None
        self._task: asyncio.Task[None] | None = None
        self.finished = asyncio.Event()

    @property
    def target_name(self) -> str:
        return f"replay of {self.journal}"

    def clock(self) -> float:
        return self._now if self._now is not None else time.time()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._play())

    async def _play(self) -> None:
        ok, reason, _, count = verify_chain(self.journal)
        if not ok:
            self.bus.publish(Note(text=f"journal not intact: {reason}; replaying anyway",
                                  level="error"))
        prev: float | None = None
        for event in read_events(self.journal):
            if prev is not None:
                await asyncio.sleep(min(max(event.ts - prev, 0) / self.speed, MAX_GAP_S))
            prev = event.ts
            self._now = event.ts
            self.bus.publish(event)
        self.bus.publish(Note(ts=self.clock(), text=f"replay finished ({count} events)"))
        self.finished.set()

    async def stop(self, heal: bool = True) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
