"""Open-loop, constant-rate load generation with coordinated-omission-corrected latency.

Request *i* is due at ``t0 + i / rate`` whatever happened to earlier requests. A fixed
pool of ``users`` worker coroutines (one connection each, no task per request) takes
due slots in order; a worker that finds its slot already past sends at once. Latency
is measured from the slot's *intended* time, not from when the request finally left,
so when the system stalls or saturates the waiting shows up in the percentiles (the
backlog grows) instead of the generator quietly sending less — the mistake closed-loop
tools make. The service time (from the actual send) is recorded too, in a second
histogram, so reports can show both views of the same run.

Slots due before the end of the run are still sent after it, up to ``drain_s``; slots
never sent by then count as ``unsent`` and as errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .histogram import Latency

OpFn = Callable[[str, int], Awaitable[bool]]  # (operation kind, slot index) -> success


@dataclass(frozen=True)
class LoadSpec:
    rate: float = 500.0
    duration_s: float = 30.0
    users: int = 32
    mix: tuple[tuple[str, float], ...] = (("read", 0.9), ("write", 0.1))
    drain_s: float = 10.0
    seed: int = 1

    @property
    def slots(self) -> int:
        return max(1, round(self.rate * self.duration_s))


@dataclass
class OpStats:
    corrected: Latency = field(default_factory=Latency)
    service: Latency = field(default_factory=Latency)
    ok: int = 0
    errors: int = 0


@dataclass
class LoadProgress:
    """A snapshot for live display."""

    elapsed_s: float
    offered_rps: float
    throughput_rps: float  # completions per second over the last interval
    completed: int
    errors: int
    corrected: Latency


@dataclass
class LoadResult:
    spec: LoadSpec
    elapsed_s: float
    ok: int
    errors: int
    unsent: int
    corrected: Latency
    service: Latency
    per_op: dict[str, OpStats]

    @property
    def offered_rps(self) -> float:
        return self.spec.slots / self.spec.duration_s

    @property
    def throughput_rps(self) -> float:
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    @property
    def error_rate(self) -> float:
        return (self.errors + self.unsent) / self.spec.slots

    def metrics(self) -> dict[str, float]:
        """The report's metric names: overall, then ``read_*`` / ``write_*`` per operation."""
        out = {"offered_rps": self.offered_rps, "throughput_rps": self.throughput_rps,
               "error_rate": self.error_rate, "requests": float(self.ok + self.errors),
               "unsent": float(self.unsent)}
        out.update(_latency_metrics("", self.corrected))
        out["service_p99_ms"] = self.service.percentile_ms(99.0)
        for kind, stats in self.per_op.items():
            done = stats.ok + stats.errors
            out[f"{kind}_throughput_rps"] = stats.ok / self.elapsed_s if self.elapsed_s else 0
            out[f"{kind}_error_rate"] = stats.errors / done if done else 0.0
            out.update(_latency_metrics(f"{kind}_", stats.corrected))
        return out


def _latency_metrics(prefix: str, lat: Latency) -> dict[str, float]:
    return {f"{prefix}p50_ms": lat.percentile_ms(50.0), f"{prefix}p99_ms": lat.percentile_ms(99.0),
            f"{prefix}p999_ms": lat.percentile_ms(99.9), f"{prefix}max_ms": lat.max_ms()}


class OpenLoop:
    """Runs one constant-rate load; ``op`` performs a single request of a given kind."""

    def __init__(self, spec: LoadSpec, op: OpFn,
                 on_progress: Callable[[LoadProgress], Any] | None = None,
                 progress_interval_s: float = 1.0) -> None:
        if spec.rate <= 0 or spec.duration_s <= 0 or spec.users < 1:
            raise ValueError("rate, duration and users must be positive")
        self.spec = spec
        self.op = op
        self.on_progress = on_progress
        self.progress_interval_s = progress_interval_s
        rng = random.Random(spec.seed)
        kinds = [k for k, _ in spec.mix]
        weights = [w for _, w in spec.mix]
        # A fixed, seeded sequence of operation kinds: the same mix run after run.
        self._kinds = rng.choices(kinds, weights, k=min(spec.slots, 10_000))
        self.per_op = {k: OpStats() for k in kinds}
        self._next = 0
        self._unsent = 0
        self._completed = 0
        self._errors = 0
        self._last_done = 0.0

    async def run(self) -> LoadResult:
        loop = asyncio.get_running_loop()
        interval = 1.0 / self.spec.rate
        t0 = loop.time() + 0.05
        drain_deadline = t0 + self.spec.duration_s + self.spec.drain_s
        slots = self.spec.slots

        async def worker() -> None:
            while True:
                i = self._next
                if i >= slots:
                    return
                self._next += 1
                intended = t0 + i * interval
                now = loop.time()
                if intended > now:
                    await asyncio.sleep(intended - now)
                elif now > drain_deadline:
                    self._unsent += slots - i
                    self._next = slots
                    return
                kind = self._kinds[i % len(self._kinds)]
                started = loop.time()
                try:
                    ok = await self.op(kind, i)
                except Exception:
                    ok = False
                done = loop.time()
                stats = self.per_op[kind]  # overall histograms are merged from these
                stats.corrected.record_s(done - intended)
                stats.service.record_s(done - started)
                self._completed += 1
                if ok:
                    stats.ok += 1
                else:
                    stats.errors += 1
                    self._errors += 1
                self._last_done = done

        reporter = asyncio.create_task(self._report(t0)) if self.on_progress else None
        try:
            await asyncio.gather(*(worker() for _ in range(self.spec.users)))
        finally:
            if reporter:
                reporter.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await reporter
        elapsed = max(self.spec.duration_s, self._last_done - t0)
        ok = sum(s.ok for s in self.per_op.values())
        return LoadResult(self.spec, elapsed, ok, self._errors, self._unsent,
                          self._merged("corrected"), self._merged("service"), self.per_op)

    def _merged(self, which: str) -> Latency:
        """The overall histogram: the per-operation ones added up (recording each sample
        once per operation instead of twice keeps the hot path cheaper)."""
        out = Latency()
        for stats in self.per_op.values():
            out.add(getattr(stats, which))
        return out

    async def _report(self, t0: float) -> None:
        assert self.on_progress is not None
        loop = asyncio.get_running_loop()
        last_n, last_t = 0, max(loop.time(), t0)
        while True:
            await asyncio.sleep(self.progress_interval_s)
            now = loop.time()
            n = self._completed
            self.on_progress(LoadProgress(
                elapsed_s=max(0.0, now - t0), offered_rps=self.spec.rate,
                throughput_rps=(n - last_n) / max(1e-6, now - last_t), completed=n,
                errors=self._errors, corrected=self._merged("corrected")))
            last_n, last_t = n, now


