"""Replay: feed a run's journal back into a bus, at its recorded pace times speed.

Duck-types the parts of ConsoleSession the TUI uses; read-only by nature.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from .core.bus import EventBus
from .core.events import Event, Note
from .core.state import State
from .core.tasks import cancel_and_wait
from .report.journal import read_events, verify_chain

MAX_GAP_S = 5.0  # idle stretches longer than this (real time) are shortened


def journal_problem(path: Path) -> str | None:
    """Why ``path`` cannot be replayed (one line naming the file and the line), or None.

    A journal whose hash chain is broken is still replayable (the console says so); a
    file that is not a journal at all is not.
    """
    try:
        lines = path.read_bytes().splitlines()
    except FileNotFoundError:
        return f"{path}: no such journal file"
    except IsADirectoryError:
        return f"{path}: is a directory, not a journal (give its journal.jsonl)"
    except OSError as exc:
        return f"{path}: cannot read: {exc.strerror or exc}"
    events = 0
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            entry = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return f"{path}: not an opsconsole journal (line {number} is not JSON)"
        if not isinstance(entry, dict) or not isinstance(entry.get("event"), dict):
            return f"{path}: not an opsconsole journal (line {number} has no event)"
        try:
            Event.from_json(entry["event"])
        except (KeyError, TypeError, ValueError):
            kind = entry["event"].get("kind")
            return (f"{path}: line {number}: not an event this opsconsole knows "
                    f"(kind {kind!r})")
        events += 1
    if not events:
        return f"{path}: empty journal: no events to replay"
    return None


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
            await cancel_and_wait(self._task)
