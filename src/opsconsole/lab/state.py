"""The lab state dir: ports, pid records and secret files, written durably.

Layout::

    state.json        ports and pid records (no secrets), rewritten atomically
    lock              flock held while a command changes the lab
    secrets/          mode 0700; every file inside mode 0600
    nats/<node>/      generated config, JetStream store, log
    vault/<node>/     generated config, raft data, log; vault/audit.log
    moto/             log
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import os
import threading
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..settings import settings

DEFAULT_STATE_DIR = Path(".opsconsole/lab")
#: Environment marker carried by every lab child; lets cleanup find processes
#: whose pid record was never written (console killed between spawn and record).
MARKER_ENV = "OPSCONSOLE_LAB_MARKER"
#: Held while a LabState is changed and saved: lab work runs in worker threads (off the
#: console's loop), and two of them must not share state.tmp or save a dict mid-change.
STATE_LOCK = threading.RLock()


def resolve_state_dir(flag: str | os.PathLike[str] | None = None) -> Path:
    """Flag beats ``OPSCONSOLE_LAB_DIR`` beats the default; always absolute."""
    raw = flag or settings().lab_dir or DEFAULT_STATE_DIR
    return Path(raw).expanduser().resolve()


@dataclass
class ProcRecord:
    """One lab child: enough to find it again and to prove a pid is still ours."""

    name: str
    kind: str
    pid: int
    create_time: float
    cmd: list[str]


@dataclass
class LabState:
    lab_id: str = ""
    phase: str = "down"  # down | starting | up
    ports: dict[str, dict[str, int]] = field(default_factory=dict)
    procs: dict[str, ProcRecord] = field(default_factory=dict)
    started_at: float | None = None
    up_seconds: float | None = None
    netns: dict[str, Any] | None = None  # NetnsPlan, recorded before it is created
    spec: dict[str, Any] | None = None  # the LabSpec it was built from (to re-attach)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["procs"] = {k: asdict(v) for k, v in self.procs.items()}
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LabState:
        procs = {k: ProcRecord(**v) for k, v in data.get("procs", {}).items()}
        return cls(
            lab_id=data.get("lab_id", ""),
            phase=data.get("phase", "down"),
            ports=data.get("ports", {}),
            procs=procs,
            started_at=data.get("started_at"),
            up_seconds=data.get("up_seconds"),
            netns=data.get("netns"),
            spec=data.get("spec"),
        )


class StateDir:
    """Filesystem access to one lab's state dir."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state_file = root / "state.json"
        self.secrets = root / "secrets"

    def ensure(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.secrets.mkdir(mode=0o700, exist_ok=True)
        os.chmod(self.secrets, 0o700)

    def load(self) -> LabState:
        try:
            return LabState.from_json(json.loads(self.state_file.read_text()))
        except FileNotFoundError:
            return LabState()
        except (json.JSONDecodeError, TypeError):
            # A torn write cannot happen (atomic rename), but a hand-edited file can.
            return LabState()

    def save(self, state: LabState) -> None:
        """Atomic, durable replace: a crash leaves the old or the new file, never half."""
        self.ensure()
        tmp = self.state_file.with_suffix(".tmp")
        with STATE_LOCK:
            with open(tmp, "w") as fh:
                json.dump(state.to_json(), fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.state_file)
        dir_fd = os.open(self.root, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def write_secret(self, name: str, value: str | bytes) -> Path:
        """Write a secret file created with mode 0600 (never world-readable, not even briefly)."""
        self.ensure()
        path = self.secrets / name
        data = value.encode() if isinstance(value, str) else value
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.chmod(path, 0o600)
        return path

    def replace_secret(self, name: str, value: str) -> Path:
        """Like ``write_secret``, but atomic: a concurrent reader (a reference service
        reading its account table) sees the old or the new content, never a torn file."""
        tmp = self.write_secret(f".{name}.tmp", value)
        path = self.secrets / name
        os.replace(tmp, path)
        return path

    def read_secret(self, name: str) -> str | None:
        try:
            return (self.secrets / name).read_text().strip()
        except FileNotFoundError:
            return None

    def write_private(self, path: Path, text: str) -> None:
        """Write a generated config that may embed secrets (leaf passwords): mode 0600."""
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
        os.chmod(path, 0o600)

    @contextlib.asynccontextmanager
    async def locked(self) -> AsyncIterator[None]:
        """Serialise lab-changing commands (two `lab up`s must not race).

        The flock is taken in a worker thread, so a caller on the console's loop keeps
        its UI running while another command holds the lock. Cancelled while waiting,
        the descriptor is closed only once the thread returns (closing it releases a
        lock taken meanwhile; closing earlier could let the thread lock a reused fd).
        """
        self.ensure()
        fd = os.open(self.root / "lock", os.O_WRONLY | os.O_CREAT, 0o644)
        acquire = asyncio.ensure_future(asyncio.to_thread(fcntl.flock, fd, fcntl.LOCK_EX))
        try:
            await asyncio.shield(acquire)
        except BaseException:
            acquire.add_done_callback(lambda _: os.close(fd))
            raise
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
