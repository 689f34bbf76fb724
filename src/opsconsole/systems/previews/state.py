"""The email-to-preview slice of the console state: the stack's last sample."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ...core.system import Slice
from .events import SessionsSampled

if TYPE_CHECKING:
    from ...core.state import State


@dataclass
class PreviewsSlice(Slice):
    """``state.previews``: the last sample of the stack (None before the first)."""

    sample: SessionsSampled | None = None

    def on_sample(self, state: State, ev: SessionsSampled) -> None:
        old = self.sample
        if old is not None and old.reachable and ev.reachable and old.running != ev.running:
            verb = "up" if ev.running > old.running else "down"
            state.note(ev.ts, f"sessions: edit containers scaled {verb} to {ev.running}"
                      f"/{ev.max_capacity}")
        elif old is not None and old.reachable != ev.reachable:
            state.note(ev.ts, "sessions stack " + ("reachable again" if ev.reachable
                                                  else f"unreachable: {ev.reason}"),
                      "info" if ev.reachable else "error")
        self.sample = ev



PreviewsSlice.handlers = {SessionsSampled: PreviewsSlice.on_sample}
