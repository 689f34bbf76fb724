"""Spawning, finding and stopping lab child processes.

Children run in their own session so the lab survives the command that started
it; every child carries ``OPSCONSOLE_LAB_MARKER=<state dir>`` so a later
``lab down`` finds it even when its pid record was never written.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

from .state import MARKER_ENV, ProcRecord


def spawn(name: str, kind: str, cmd: list[str], log: Path, marker: str,
          cwd: Path | None = None) -> ProcRecord:
    """Start a detached child, stdout+stderr to ``log``; return its record."""
    log.parent.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env[MARKER_ENV] = marker
    # Lab children must never pick up the operator's real cloud or vault settings.
    for var in ("VAULT_TOKEN", "BAO_TOKEN", "AWS_PROFILE"):
        env.pop(var, None)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True, env=env, cwd=cwd, close_fds=True,
        )
    try:
        ctime = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        ctime = 0.0
    return ProcRecord(name=name, kind=kind, pid=proc.pid, create_time=ctime, cmd=cmd)


def is_alive(rec: ProcRecord) -> bool:
    """True if the recorded pid is still the process we started (guards pid reuse)."""
    try:
        p = psutil.Process(rec.pid)
        if rec.create_time and abs(p.create_time() - rec.create_time) > 0.5:
            return False
        return p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def find_marked(marker: str) -> list[psutil.Process]:
    """Every live process carrying our marker (covers children with no pid record)."""
    found = []
    me = os.getpid()
    for p in psutil.process_iter(["pid"]):
        if p.pid == me:
            continue
        try:
            if p.environ().get(MARKER_ENV) == marker and p.status() != psutil.STATUS_ZOMBIE:
                found.append(p)
        except psutil.Error:
            continue
    return found


async def stop_processes(procs: Iterable[psutil.Process], grace: float = 3.0) -> None:
    """SIGCONT (a paused node cannot exit), SIGTERM, then SIGKILL after ``grace`` s.

    Waits with ``asyncio.sleep``: the caller's loop (the console's UI loop) keeps running.
    """
    procs = list(procs)
    for p in procs:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
    alive = await wait_exit(procs, grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    await wait_exit(alive, grace)


async def wait_exit(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until each process has exited or is a zombie (whose parent, maybe a
    console still running, reaps it later); return those still running."""
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        alive = [p for p in alive if _running(p)]
        if not alive or time.monotonic() >= deadline:
            break
        await asyncio.sleep(0.02)
    return alive


def _running(p: psutil.Process) -> bool:
    try:
        return p.is_running() and p.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def record_process(rec: ProcRecord) -> psutil.Process | None:
    return psutil.Process(rec.pid) if is_alive(rec) else None
