"""Process and port helpers of the reference services, written here on purpose.

A reference system shares no code with its tester (``opsconsole``), so these few lines are
this package's own, not imported from the console's lab: starting a detached child with its
output in a log, stopping children (SIGCONT, SIGTERM, SIGKILL after a grace), and choosing
free loopback ports.

Children inherit this process's environment, and with it the lab's marker variable that the
lab launcher set on this service: the launcher's ``lab down`` finds them by that marker.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

import psutil

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free on 127.0.0.1 a moment ago (all bound until chosen, so
    the kernel never hands out the same port twice within one call)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def spawn(cmd: list[str], log: Path) -> int:
    """Start a detached child (own session: it outlives this service's request), stdout and
    stderr appended to ``log``; return its pid. Blocks until the child has exec'd."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                close_fds=True)
    return proc.pid


async def stop_processes(procs: Iterable[psutil.Process], grace: float) -> None:
    """SIGCONT (a paused process cannot exit), SIGTERM, then SIGKILL after ``grace`` s."""
    procs = list(procs)
    for p in procs:
        for sig in (signal.SIGCONT, signal.SIGTERM):
            with contextlib.suppress(psutil.Error):
                p.send_signal(sig)
    alive = await _wait_exit(procs, grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    await _wait_exit(alive, grace)


async def _wait_exit(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Until each process has exited or is a zombie; return those still running."""
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


def write_private(path: Path, text: str) -> None:
    """Write a file that embeds credentials (a leaf's password): created with mode 0600."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    path.chmod(0o600)
