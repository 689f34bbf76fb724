"""Stopping tasks for certain: a task that swallows a cancel is cancelled again."""

from __future__ import annotations

import asyncio

from opsconsole.core.bus import EventBus
from opsconsole.core.tasks import cancel_and_wait
from opsconsole.probes.base import Probe, ProbeRunner


def stubborn(swallow: int, stopped: list[str], waiting: asyncio.Event,
             ignored: asyncio.Event) -> asyncio.Task[None]:
    """A task that ignores its first ``swallow`` cancels, like a loop around a 3.11
    ``asyncio.wait_for`` whose inner await completed as the cancel landed. ``waiting`` is
    set each time it waits (again), ``ignored`` once it has swallowed a cancel."""
    async def body() -> None:
        count = 0
        while True:
            try:
                waiting.set()
                await asyncio.Event().wait()  # until cancelled
            except asyncio.CancelledError:
                if count == swallow:
                    stopped.append("stopped")
                    raise
                count += 1
                ignored.set()

    return asyncio.create_task(body())


async def test_a_swallowed_cancel_is_repeated_until_the_task_ends() -> None:
    stopped: list[str] = []
    waiting, ignored = asyncio.Event(), asyncio.Event()
    task = stubborn(2, stopped, waiting, ignored)
    await asyncio.wait_for(waiting.wait(), 5)
    # the negative control: one cancel, as before, leaves the task running
    waiting.clear()
    task.cancel()
    await asyncio.wait_for(ignored.wait(), 5)
    await asyncio.wait_for(waiting.wait(), 5)  # swallowed it and waits on
    assert not task.done()
    assert await cancel_and_wait(task, retry_s=0.05) is True
    assert task.cancelled() and stopped == ["stopped"]


async def test_a_task_that_never_stops_is_given_up_on_after_the_limit() -> None:
    mortal = False
    waiting = asyncio.Event()

    async def immortal() -> None:
        while True:
            try:
                waiting.set()
                await asyncio.Event().wait()  # until cancelled
            except asyncio.CancelledError:
                if mortal:
                    raise

    task = asyncio.create_task(immortal())
    await asyncio.wait_for(waiting.wait(), 5)
    assert await cancel_and_wait(task, retry_s=0.05, limit_s=0.3) is False
    assert not task.done()
    mortal = True  # the test's own clean-up
    assert await cancel_and_wait(task, retry_s=0.05, limit_s=5) is True


class SwallowsOnce(Probe):
    """A probe whose sample swallows the first cancel (and then samples on)."""

    name = "swallows"
    interval = 0.01

    def __init__(self) -> None:
        self.swallowed = False
        self.sampling = asyncio.Event()

    async def sample(self):
        self.sampling.set()
        try:
            await asyncio.Event().wait()  # until cancelled
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed = True
        return []


async def test_removing_a_probe_that_swallowed_a_cancel_returns() -> None:
    probe = SwallowsOnce()
    runner = ProbeRunner(EventBus(), [])
    task = runner.add(probe)
    await asyncio.wait_for(probe.sampling.wait(), 5)
    await asyncio.wait_for(runner.remove(task), 5)
    assert probe.swallowed and task.done() and task not in runner._tasks
