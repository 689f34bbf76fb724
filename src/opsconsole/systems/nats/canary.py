"""Relay canaries: constant-rate, sequence-numbered messages across each leaf link.

Per leaf and direction (``c2l`` central→local, ``l2c`` local→central) a publisher
stamps ``{seq, ts}`` and a subscriber on the far side tracks what arrives:
delivered, duplicated (a sequence number seen twice), reordered (older than one
already seen), lost (sent, older than the grace window, never seen) and latency
(same host clock on both ends). Publishing goes through nats-py, which buffers
while *its own* connection is disconnected, so a client reconnect shows up as latency
rather than loss when the buffer holds. Core NATS across a leaf link is at-most-once:
while the leaf server switches hub, messages with no interest path are dropped.

A publisher never sends faster than ``rate``: after a stall it skips the missed slots
instead of bursting, so any interval of length L holds at most ``rate * L + 2`` sends —
the basis of a loss bound over a measured outage window.

A canary is a probe: the console runs one per leaf (``NatsSystem.probes`` with
``ProbeContext.canaries``); each sample is the cumulative counters of both directions.
Used on its own (a pack's canary on one instance), ``start`` also publishes those
samples on a bus once a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from dataclasses import dataclass, field

import nats

from ...core.bus import EventBus
from ...core.events import Event
from ...core.tasks import cancel_and_wait
from ...probes.base import Probe
from ...targets.nats import NatsEndpoint, as_endpoint
from .events import CanaryReport

GRACE_S = 5.0  # a message not seen this long after it was sent counts as lost
WARMUP_S = 10.0  # start counting anyway after this long without a warm-up crossing


@dataclass
class PathTracker:
    sent: int = 0
    delivered: int = 0
    duplicated: int = 0
    reordered: int = 0
    max_seq: int = -1
    seen: set[int] = field(default_factory=set)
    sent_at: dict[int, float] = field(default_factory=dict)
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=2000))
    lost: int = 0
    settled: int = 0  # messages whose fate is known (delivered or lost): settled - lost
    #: when kept (a scenario's bounded run, not the console's endless one): the fate of
    #: every settled message in send order, (sent_at, delivered)
    fates: list[tuple[float, bool]] | None = None

    def on_sent(self, seq: int, at: float) -> None:
        self.sent += 1
        self.sent_at[seq] = at

    def on_received(self, seq: int, sent_ts: float, now: float) -> None:
        if seq in self.seen:
            self.duplicated += 1
            return
        self.seen.add(seq)
        self.delivered += 1
        if seq < self.max_seq:
            self.reordered += 1
        self.max_seq = max(self.max_seq, seq)
        self.latencies_ms.append((now - sent_ts) * 1000)

    def settle(self, now: float) -> None:
        """Count as lost what was sent over GRACE_S ago and never seen; forget old state."""
        for seq, at in list(self.sent_at.items()):
            if now - at < GRACE_S:
                break  # insertion order is send order
            delivered = seq in self.seen
            if not delivered:
                self.lost += 1
            if self.fates is not None:
                self.fates.append((at, delivered))
            self.settled += 1
            self.seen.discard(seq)
            del self.sent_at[seq]

    def in_flight(self, now: float) -> bool:
        """Whether a message sent and not seen is still younger than GRACE_S (may arrive)."""
        return any(seq not in self.seen and now - at < GRACE_S
                   for seq, at in self.sent_at.items())

    def percentile(self, q: float) -> float | None:
        if not self.latencies_ms:
            return None
        data = sorted(self.latencies_ms)
        return data[min(len(data) - 1, int(q * len(data)))]


CONNECT_DEADLINE_S = 10.0


class RelayCanary(Probe):
    """Canaries for one leaf, both directions, until stopped."""

    interval = 1.0
    timeout = 5.0

    def __init__(self, bus: EventBus | None, leaf: str, user: str,
                 central: NatsEndpoint | str, local: NatsEndpoint | str, rate: float = 10.0,
                 keep_fates: bool = False) -> None:
        self.name = f"canary:{leaf}"
        self.bus, self.leaf, self.user = bus, leaf, user
        self.central, self.local = as_endpoint(central), as_endpoint(local)
        self.rate = rate
        self.paths = {p: PathTracker(fates=[] if keep_fates else None) for p in ("c2l", "l2c")}
        # Counting starts once a warm-up message has crossed: interest across a leaf
        # link propagates asynchronously, and start-up is not loss.
        self.ready = {"c2l": asyncio.Event(), "l2c": asyncio.Event()}
        self._tasks: list[asyncio.Task[None]] = []
        self._publishers: list[asyncio.Task[None]] = []
        self._conns: list[nats.NATS] = []

    def subject(self, path: str) -> str:
        return f"OwnerSpace.{self.user}.canary.{path}"

    async def sample(self) -> list[Event]:
        """As a probe: connect on first use (a failure is retried with backoff), then the
        counters of both directions."""
        if not self._conns:
            await self._connect()
        return self.reports()

    async def close(self) -> None:
        await self.stop()

    async def start(self) -> None:
        """Standalone: connect, publish, and report on ``bus`` once a second."""
        await self._connect()
        self._tasks.append(asyncio.create_task(self._report()))

    async def _connect(self) -> None:
        opts = {"max_reconnect_attempts": -1, "reconnect_time_wait": 0.2,
                "inbox_prefix": f"_INBOX_{self.user}", "connect_timeout": 2}
        # Reconnects are endless once connected; the first connection has a deadline (a
        # server that refuses our login must not hang a standalone canary's start).
        async with asyncio.timeout(CONNECT_DEADLINE_S):
            central = await self.central.connect(**opts)
            try:
                local = await self.local.connect(**opts)
            except BaseException:
                await central.close()
                raise
        self._conns = [central, local]
        for path, sub_nc in (("c2l", local), ("l2c", central)):
            await sub_nc.subscribe(self.subject(path), cb=self._receiver(path))
        self._publishers = [asyncio.create_task(self._publish("c2l", central)),
                            asyncio.create_task(self._publish("l2c", local))]
        self._tasks = [*self._publishers]

    async def stop_publishing(self) -> None:
        """Stop sending; keep receiving, so what is in flight can still arrive."""
        await cancel_and_wait(self._publishers)

    def in_flight(self) -> bool:
        """Whether some message sent could still arrive (unseen and younger than GRACE_S)."""
        now = time.time()
        return any(t.in_flight(now) for t in self.paths.values())

    async def stop(self) -> None:
        await cancel_and_wait(self._tasks)
        for nc in self._conns:
            with contextlib.suppress(Exception):
                await nc.close()
        self._conns = []

    def _receiver(self, path: str):
        tracker = self.paths[path]

        async def on_msg(msg) -> None:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                body = json.loads(msg.data)
                seq = int(body["seq"])
                self.ready[path].set()
                if seq >= 0:  # seq -1 is a warm-up message
                    tracker.on_received(seq, float(body["ts"]), time.time())

        return on_msg

    async def _publish(self, path: str, nc: nats.NATS) -> None:
        tracker, subject, interval = self.paths[path], self.subject(path), 1 / self.rate
        deadline = time.monotonic() + WARMUP_S
        while not self.ready[path].is_set() and time.monotonic() < deadline:
            with contextlib.suppress(Exception):
                await nc.publish(subject, json.dumps({"seq": -1, "ts": time.time()}).encode())
            # asyncio.timeout, not wait_for: on Python 3.11 wait_for drops a cancel that
            # lands as the wait completes, and this loop would then never stop.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.1):
                    await self.ready[path].wait()
        seq, next_at = 0, time.monotonic()
        while True:
            now = time.time()
            tracker.on_sent(seq, now)
            with contextlib.suppress(Exception):  # counted as sent; its loss will show
                await nc.publish(subject, json.dumps({"seq": seq, "ts": now}).encode())
            seq += 1
            # Constant rate without drift from slow publishes, and no burst after a stall
            # (missed slots are skipped): never more than rate * L + 2 sends in L seconds.
            next_at = max(next_at + interval, time.monotonic())
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def reports(self) -> list[Event]:
        """The cumulative counters of both directions, settled as of now."""
        now = time.time()
        out: list[Event] = []
        for path, t in self.paths.items():
            t.settle(now)
            out.append(CanaryReport(
                leaf=self.leaf, path=path, sent=t.sent, delivered=t.delivered,
                settled=t.settled, lost=t.lost, duplicated=t.duplicated, reordered=t.reordered,
                p50_ms=t.percentile(0.5), p99_ms=t.percentile(0.99)))
        return out

    def unreachable(self, why: str) -> list[Event]:
        from ...core.events import ProbeFailed

        return [ProbeFailed(probe=self.name, reason=why)]

    async def _report(self) -> None:
        assert self.bus is not None
        while True:
            await asyncio.sleep(1.0)
            for event in self.reports():
                self.bus.publish(event)
