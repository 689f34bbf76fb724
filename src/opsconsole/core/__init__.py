"""TUI-free core: events, bus and the state reducer (never imports textual)."""

from .bus import EventBus
from .events import Event
from .state import State

__all__ = ["Event", "EventBus", "State"]
