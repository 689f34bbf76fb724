"""The email-to-preview stack events (registered with the event vocabulary on import)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from ...core.events import Event


@dataclass(frozen=True, kw_only=True)
class SessionsSampled(Event):
    """The email-to-preview sessions stack: sessions by status and edit containers."""

    kind: ClassVar[str] = "sessions"
    reachable: bool
    reason: str = ""
    running: int = 0  # edit containers up
    desired: int = 0
    max_capacity: int = 0
    sessions: dict[str, int] = field(default_factory=dict)  # status -> count
    scale_events: int = 0  # scale-up + scale-down so far
