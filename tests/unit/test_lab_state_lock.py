"""StateDir.locked: the lab's flock is waited for off the loop, and a cancelled wait
leaves neither a held lock nor an open descriptor behind."""

from __future__ import annotations

import asyncio
import fcntl
import itertools
import os
import threading
import time
from pathlib import Path

from opsconsole.lab.state import StateDir

from ..helpers import async_wait_until


def _hold(sd: StateDir) -> int:
    """Take the lab lock as another command would (its own open file description)."""
    sd.ensure()
    fd = os.open(sd.root / "lock", os.O_WRONLY | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _free(sd: StateDir) -> bool:
    fd = os.open(sd.root / "lock", os.O_WRONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)  # closing drops the probe's lock


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_the_loop_runs_while_waiting_for_the_lab_lock(tmp_path: Path) -> None:
    sd = StateDir(tmp_path / "lab")
    holder = _hold(sd)
    release = threading.Timer(1.0, os.close, (holder,))  # the other command finishes
    acquired: list[float] = []

    async def take() -> None:
        async with sd.locked():
            acquired.append(time.monotonic())

    release.start()
    task = asyncio.create_task(take())
    ticks = [time.monotonic()]
    while not task.done():
        await asyncio.sleep(0.05)
        ticks.append(time.monotonic())
    await task
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert acquired
    assert max(gaps) < 0.5, f"the loop stalled {max(gaps):.2f} s waiting for the flock"
    assert len(ticks) > 10, "the wait for the lock did not last"
    assert _free(sd)


async def test_a_cancelled_wait_leaves_no_lock_and_no_descriptor(tmp_path: Path) -> None:
    sd = StateDir(tmp_path / "lab")
    holder = _hold(sd)
    baseline = _open_fds()
    entered = asyncio.Event()

    async def take() -> None:
        async with sd.locked():
            entered.set()

    task = asyncio.create_task(take())
    await async_wait_until(lambda: _open_fds() > baseline, 5, "the waiter to open the lock")
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled() and not entered.is_set()
    os.close(holder)  # the waiting thread now gets the lock, and must give it back
    await async_wait_until(lambda: _open_fds() < baseline, 5,
                           "the cancelled waiter to close its descriptor")
    assert _free(sd)
    async with asyncio.timeout(5):
        async with sd.locked():
            assert not _free(sd)
