"""The run journal: JSONL, one event a line, fsync per event, hash-chained.

Each line is ``{"seq", "prev", "event", "hash"}`` where ``hash`` is
SHA-256(prev + canonical JSON of seq/prev/event). Changing, dropping or
reordering any line breaks the chain from there on.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..core.events import Event
from .redact import Redactor

GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def _link_hash(seq: int, prev: str, event: dict[str, Any]) -> str:
    return hashlib.sha256(prev.encode() + canonical({"seq": seq, "prev": prev,
                                                     "event": event})).hexdigest()


class Journal:
    def __init__(self, path: Path, redactor: Redactor | None = None) -> None:
        self.path = path
        self.redactor = redactor or Redactor()
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_TRUNC, 0o600)
        self.seq = 0
        self.head = GENESIS

    def append(self, event: Event) -> None:
        """Bus subscriber: durable before it returns (fsync per event)."""
        if self._fd < 0:
            return
        data = self.redactor.obj(event.to_json())
        digest = _link_hash(self.seq, self.head, data)
        line = canonical({"seq": self.seq, "prev": self.head, "event": data, "hash": digest})
        os.write(self._fd, line + b"\n")
        os.fsync(self._fd)
        self.seq += 1
        self.head = digest

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def read_events(path: Path) -> Iterator[Event]:
    for line in path.read_text().splitlines():
        if line.strip():
            yield Event.from_json(json.loads(line)["event"])


def verify_chain(path: Path) -> tuple[bool, str, str, int]:
    """(intact, reason, head hash, event count)."""
    prev, count = GENESIS, 0
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        return False, f"journal unreadable: {exc.strerror}", prev, 0
    for number, raw in enumerate(lines, start=1):
        try:
            entry = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return False, f"journal line {number} is not valid JSON", prev, count
        if entry.get("seq") != count or entry.get("prev") != prev:
            return False, f"journal line {number}: chain broken (sequence or link)", prev, count
        if _link_hash(count, prev, entry.get("event")) != entry.get("hash"):
            return False, f"journal line {number}: hash mismatch (content changed)", prev, count
        prev, count = entry["hash"], count + 1
    return True, "", prev, count
