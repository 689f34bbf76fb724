"""The fault ledger: every fault is written (fsync) before it is injected.

An append-only JSONL file of operations (``pending`` → ``active`` → ``healed``);
the current state is the fold of those lines. Each record carries everything
needed to heal it from the ledger alone (``heal``), plus the owning process, so
a later process can tell "owned by a live run" from "left behind by a crash".
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ..settings import settings


def user_state_dir() -> Path:
    """The user's opsconsole state dir (ledger, signing key): 0700."""
    path = settings().user_state_dir.resolve()
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass
class FaultRecord:
    id: str
    fault: str
    target: str
    params: dict[str, Any]
    ttl_s: float
    created_at: float
    heal: dict[str, Any] = field(default_factory=dict)  # how to undo, from the record alone
    status: str = "pending"  # pending | active | healed | heal_failed
    owner_pid: int = 0
    owner_started: float = 0.0
    run_id: str = ""
    note: str = ""

    @property
    def expires_at(self) -> float:
        return self.created_at + self.ttl_s if self.ttl_s > 0 else float("inf")

    @property
    def open(self) -> bool:
        """Still needs healing (pending counts: injection may have half-happened)."""
        return self.status in ("pending", "active", "heal_failed")

    def owner_alive(self) -> bool:
        try:
            proc = psutil.Process(self.owner_pid)
            return abs(proc.create_time() - self.owner_started) < 0.5
        except psutil.Error:
            return False


def _me() -> tuple[int, float]:
    pid = os.getpid()
    return pid, psutil.Process(pid).create_time()


class FaultLedger:
    def __init__(self, path: Path | None = None) -> None:
        self.path = path or user_state_dir() / "faults.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.path.with_suffix(".lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _append(self, op: dict[str, Any]) -> None:
        line = json.dumps(op, sort_keys=True) + "\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode())
            os.fsync(fd)
        finally:
            os.close(fd)

    def open_fault(self, fault: str, target: str, params: dict[str, Any], ttl_s: float,
                   heal: dict[str, Any], run_id: str = "") -> FaultRecord:
        """Record a fault as ``pending`` (durably) — call before injecting it."""
        pid, started = _me()
        rec = FaultRecord(id=f"f-{uuid.uuid4().hex[:10]}", fault=fault, target=target,
                          params=params, ttl_s=ttl_s, created_at=time.time(), heal=heal,
                          owner_pid=pid, owner_started=started, run_id=run_id)
        with self._locked():
            self._append({"op": "open", **asdict(rec)})
        return rec

    def mark(self, fault_id: str, status: str, note: str = "",
             heal: dict[str, Any] | None = None) -> None:
        op: dict[str, Any] = {"op": "mark", "id": fault_id, "status": status, "note": note,
                              "at": time.time()}
        if heal is not None:
            op["heal"] = heal
        with self._locked():
            self._append(op)

    # ---------------------------------------------------------------- reading
    def records(self) -> dict[str, FaultRecord]:
        out: dict[str, FaultRecord] = {}
        try:
            lines = self.path.read_text().splitlines()
        except FileNotFoundError:
            return out
        for line in lines:
            try:
                op = json.loads(line)
            except json.JSONDecodeError:
                continue  # a torn last line from a crash mid-write: the op never happened
            if op.get("op") == "open":
                fields = {k: v for k, v in op.items() if k != "op"}
                out[op["id"]] = FaultRecord(**fields)
            elif op.get("op") == "mark" and op.get("id") in out:
                rec = out[op["id"]]
                rec.status = op["status"]
                rec.note = op.get("note", rec.note)
                if "heal" in op:
                    rec.heal = op["heal"]
        return out

    def open_records(self) -> list[FaultRecord]:
        return [r for r in self.records().values() if r.open]

    def compact(self) -> None:
        """Drop healed history once nothing is open (keeps the file small)."""
        with self._locked():
            if not any(r.open for r in self.records().values()):
                self.path.write_text("")
