"""The one answer to "is the email-to-preview stack healthy?", from its probe sample: it
answers, and it runs no more edit containers than its capacity. The instances pane's
sessions summary shows it."""

from __future__ import annotations

from ...core.system import Health
from .events import SessionsSampled

LIVE = ("active", "starting", "pending")


def stack_health(s: SessionsSampled) -> Health:
    within = s.max_capacity == 0 or s.running <= s.max_capacity
    health = ("unreachable" if not s.reachable else "healthy" if within
              else f"over capacity ({s.running}/{s.max_capacity})")
    live = ", ".join(f"{n} {k}" for k in LIVE if (n := s.sessions.get(k))) or "none live"
    return Health("sessions", s.reachable and within, health, "—",
                  {"sessions": live, "containers": f"{s.running}/{s.max_capacity}"})
