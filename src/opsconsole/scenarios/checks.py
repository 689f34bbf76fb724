"""What every system's checks share; the checks themselves live with their system
(``systems/<name>/checks.py``): on the live probe state (what the console shows) and on
the system itself (real messages, real writes)."""

from __future__ import annotations

import time

FRESH_S = 5.0  # a sample older than this says nothing about "now"


def fresh(ts: float) -> bool:
    """Whether a sample taken at ``ts`` (wall clock) still says something about now."""
    return time.time() - ts < FRESH_S
