"""Stopping asyncio tasks for certain.

On Python 3.11 a single ``task.cancel()`` can be lost: ``asyncio.wait_for`` returns its
inner result when a cancel lands as the inner await completes, and a loop around it then
runs on. Awaiting such a task after one cancel waits forever (a probe removed at a
scenario's end hung a run this way). :func:`cancel_and_wait` repeats the cancel until the
task has ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from typing import Any


async def cancel_and_wait(tasks: asyncio.Task[Any] | Iterable[asyncio.Task[Any]],
                          retry_s: float = 0.5, limit_s: float | None = None) -> bool:
    """Cancel ``tasks`` and wait until each has ended, cancelling again every ``retry_s``
    while one is still running. With ``limit_s``, give up after that long. Returns whether
    every task ended. The tasks' own exceptions are retrieved and dropped: the caller
    asked them to stop, so what they raised on the way out is moot."""
    every = [tasks] if isinstance(tasks, asyncio.Task) else list(tasks)
    deadline = None if limit_s is None else time.monotonic() + limit_s
    for task in every:
        task.cancel()
    while pending := [t for t in every if not t.done()]:
        wait = retry_s if deadline is None else min(retry_s, deadline - time.monotonic())
        if wait <= 0:
            break
        await asyncio.wait(pending, timeout=wait)
        for task in pending:
            if not task.done():
                task.cancel()
    for task in every:
        reap(task)
    return all(t.done() for t in every)


def reap(task: asyncio.Task[Any]) -> None:
    """Retrieve a finished task's exception so asyncio does not log it as never retrieved."""
    if task.done() and not task.cancelled():
        with contextlib.suppress(BaseException):
            task.exception()
