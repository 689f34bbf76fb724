"""In-process event bus: synchronous fan-out to callbacks and async queues."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from .events import Event

Subscriber = Callable[[Event], None]


class EventBus:
    """Publishing never blocks and never raises because of a subscriber.

    Callbacks run inline (the reducer must see events in order); queues are
    for async consumers such as the journal, and drop the oldest event when a
    slow consumer lets its queue fill rather than stall the probes.
    """

    def __init__(self) -> None:
        self._callbacks: list[Subscriber] = []
        self._queues: list[asyncio.Queue[Event]] = []
        self.errors = 0

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        self._callbacks.append(callback)
        return lambda: self._callbacks.remove(callback)

    def queue(self, maxsize: int = 10_000) -> asyncio.Queue[Event]:
        q: asyncio.Queue[Event] = asyncio.Queue(maxsize)
        self._queues.append(q)
        return q

    def publish(self, event: Event) -> None:
        for cb in list(self._callbacks):
            try:
                cb(event)
            except Exception:  # a broken subscriber must not take the probes down
                self.errors += 1
        for q in self._queues:
            if q.full():
                q.get_nowait()
            q.put_nowait(event)
