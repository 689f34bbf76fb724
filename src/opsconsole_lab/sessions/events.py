"""What the stack did, for a console pane: a bounded event log plus counters.

Events also go to ``<state>/events.jsonl`` (one JSON object a line) for post-mortems.
"""

from __future__ import annotations

import collections
import json
import logging
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("sessions.events")


class EventLog:
    def __init__(self, path: Path | None = None, size: int = 1000) -> None:
        self.path = path
        self.ring: collections.deque[dict[str, Any]] = collections.deque(maxlen=size)
        self.seq = 0
        self.counters: collections.Counter[str] = collections.Counter()

    def emit(self, kind: str, session_id: str = "", user: str = "", **detail: Any) -> None:
        self.seq += 1
        event = {"seq": self.seq, "ts": round(time.time(), 3), "kind": kind,
                 "session_id": session_id, "user": user, **detail}
        self.ring.append(event)
        self.counters[kind] += 1
        log.info("%s %s %s %s", kind, session_id, user,
                 " ".join(f"{k}={v}" for k, v in detail.items()))
        if self.path is not None:
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(json.dumps(event) + "\n")

    def since(self, seq: int, limit: int = 500) -> list[dict[str, Any]]:
        return [e for e in self.ring if e["seq"] > seq][:limit]
