"""Probe contract and the runner that schedules probes without overlap."""

from __future__ import annotations

import asyncio
import contextlib
from abc import ABC, abstractmethod

from ..core.bus import EventBus
from ..core.events import Event, ProbeFailed
from ..core.tasks import cancel_and_wait
from ..targets.http import reason


class Probe(ABC):
    """Samples one target; ``sample`` may raise, ``unreachable`` turns that into events."""

    name: str = "probe"
    interval: float = 1.0
    timeout: float = 3.0
    max_backoff: float = 4.0

    async def open(self) -> None:  # noqa: B027 - optional hook
        """Acquire long-lived clients (kept across samples)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release what ``open`` acquired."""

    @abstractmethod
    async def sample(self) -> list[Event]: ...

    def unreachable(self, why: str) -> list[Event]:
        return [ProbeFailed(probe=self.name, reason=why)]


class ProbeRunner:
    """Runs every probe in its own task until ``stop``; publishes to the bus."""

    def __init__(self, bus: EventBus, probes: list[Probe]) -> None:
        self.bus = bus
        self.probes = probes
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.samples = 0

    async def start(self) -> None:
        for probe in self.probes:
            self._tasks.append(asyncio.create_task(self._loop(probe), name=probe.name))

    def add(self, probe: Probe) -> asyncio.Task[None]:
        """Probe a target discovered at run time (e.g. a freshly provisioned instance)."""
        self.probes.append(probe)
        task = asyncio.create_task(self._loop(probe), name=probe.name)
        self._tasks.append(task)
        return task

    async def remove(self, task: asyncio.Task[None]) -> None:
        await cancel_and_wait(task)
        if task in self._tasks:
            self._tasks.remove(task)

    async def stop(self) -> None:
        self._stop.set()
        await cancel_and_wait(self._tasks)
        self._tasks.clear()

    async def _loop(self, probe: Probe) -> None:
        failures = 0
        try:
            await probe.open()
        except Exception as exc:  # a client that cannot even be built is a failure too
            failures = 1
            self._publish(probe.unreachable(reason(exc)))
        try:
            while not self._stop.is_set():
                try:
                    # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel
                    async with asyncio.timeout(probe.timeout):
                        events = await probe.sample()
                    if failures:
                        self.bus.publish(ProbeFailed(probe=probe.name, reason=""))
                    failures = 0
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    failures += 1
                    events = probe.unreachable(reason(exc))
                self.samples += 1
                self._publish(events)
                delay = probe.interval if not failures else min(
                    probe.interval * 2 ** (failures - 1), probe.max_backoff)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stop.wait()
        finally:
            with contextlib.suppress(Exception):
                await probe.close()

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            self.bus.publish(event)
