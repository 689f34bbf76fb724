"""A worker process that hosts simulated mesh agents for the `mesh.scale` scenario.

Start one per core you want to load with (``python -m opsconsole.systems.mesh.scale_worker --nats
URL [--name NAME]`` or ``opsconsole agent --nats URL``); a coordinator
(:mod:`opsconsole.systems.mesh.scale_coordinator`) finds workers over NATS, hands each a share of
the agents, merges what they stream back and times convergence. NATS is the only channel
between them: no home-made cluster protocol, no shared files.

Protocol (JSON bodies; ``<name>`` and ``<run>`` are ``[A-Za-z0-9_-]+`` tokens):

``opsconsole.mesh.discover`` (request, every idle or busy worker answers)
    reply ``{"name", "pid", "cores", "host", "busy": run | null}``.
``opsconsole.mesh.worker.<name>.job`` (request/reply)
    ``{"run", "agents", "first_index", "rate_per_agent", "duration_s", "ae_interval",
    "seed", ...}`` (all of :class:`JobSpec`) -> ``{"accepted": true}`` or ``{"accepted":
    false, "error"}``. "Accepted" means the worker already subscribed to the run's gossip,
    ``go`` and ``stop`` subjects (and the server saw it), so nothing sent later is missed.
    It then starts its agents (identities ``first_index .. first_index + agents - 1``,
    derived from ``seed``, so they do not depend on which worker hosts them).
``opsconsole.mesh.<run>.go`` (coordinator -> workers, once every worker is ``ready``)
    start the load phase now, for ``duration_s``.
``opsconsole.mesh.<run>.report`` (worker -> coordinator, every ``report_interval`` and at
    once on a phase change; fire-and-forget, ordered by ``seq``)::

        {"worker", "run", "seq", "phase": starting|ready|load|settle|done, "elapsed_s",
         "interval": encoded HDR of propagation latency since the last report, "samples",
         "sent", "delivered", "unique", "transport_deliveries", "nats_in_bytes",
         "nats_out_bytes", "nats_in_msgs", "nats_out_msgs",   # cumulative for the job
         "d": {same counters, this interval}, "dt": interval seconds,
         "agents", "agents_started", "rss_bytes", "rss_peak_bytes", "cpu_s",
         "errors", "error_kinds", "lag_ms_max", "late", "gc_ms_max", "gc_s",
         "load": null | {the counters over the load window, "s": its length, "cpu_s"},
         "digests": {digest prefix: agents} (settle/done), "stop_reason" (done)}

    ``sent`` = ops published by local agents; ``delivered`` = ops applied from gossip by
    local agents (one per agent per op: the fan-out); ``unique`` = distinct ops that
    reached this worker (= latency samples); ``transport_deliveries`` = handler calls on
    every channel (beacons and anti-entropy included); ``nats_*`` = ``nc.stats`` (payload
    bytes) since the job began.
``opsconsole.mesh.<run>.stop``
    stop the agents, send a last ``done`` report and end the job. A job also ends by itself
    ``deadline_s`` after it was accepted (a coordinator that died leaves no load behind).
``opsconsole.mesh.worker.<name>.quit``
    end the job (if any) and exit the process; so do SIGTERM and SIGINT.

Load model: after ``go`` every agent publishes ``rate_per_agent`` ops/s, open loop (a fixed
schedule with a random phase per agent; lateness is reported as ``lag_ms_max``). Its first
op adds ``task-<global index % tasks>`` (a re-add of a shared id: the task set stays
bounded by ``tasks``); then 90 % ``update`` of one of 4 fields of a random present task,
5 % ``claim``, 5 % ``complete`` (either falls back to an ``update`` when the task is no
longer open / already done, so every tick sends exactly one op). The CRDT never collects
garbage, so unbounded adds would make every digest and anti-entropy delta grow with run
length; LWW fields overwrite in place.

Propagation latency = receive wall clock - the op's signing time (``MeshAgent.on_op``;
same-host clocks, or NTP-synchronised hosts). ONE sample per distinct op per worker: only
the worker's first agent records (plus the second one for ops authored by the first, which
the first never receives). Recording at every local delivery would cost ~4 us x agents per
message and weight the histogram by local agent count; all local agents get the same
``Delivery`` within the same callback, so the first one's latency is the worker's (the
last local agent applies it at most a few hundred microseconds later, at 500 agents).
Not in the samples: an op that anti-entropy repaired before its gossip copy arrived (lost
messages show up in convergence time instead), a worker's only agent's own ops, and send
lateness -- the clock starts at signing, so a worker behind schedule reports it as
``lag_ms_max`` / ``late`` rather than as latency (compare them before trusting a p99).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import gc
import heapq
import json
import logging
import os
import random
import re
import signal
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import asdict, dataclass, fields
from typing import Any
from urllib.parse import urlsplit

import nats
import psutil
from pydantic import ValidationError

from opsconsole_lab.mesh import AgentIdentity, MeshAgent, NatsTransport, Op, server_has_seen

from ...core.tasks import cancel_and_wait
from ...errors import UserError, validation_message
from ...load.histogram import Latency
from ...targets.nats import NatsCredentials, connect_options

log = logging.getLogger(__name__)

PREFIX = "opsconsole.mesh"
DISCOVER = f"{PREFIX}.discover"
PHASES = ("starting", "ready", "load", "settle", "done")
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")
_URL_SCHEMES = ("nats", "tls", "ws", "wss")
DIGEST_CHARS = 16  # 64 bits of the BLAKE3 digest: plenty to tell replicas apart


def job_subject(name: str) -> str:
    return f"{PREFIX}.worker.{name}.job"


def quit_subject(name: str) -> str:
    return f"{PREFIX}.worker.{name}.quit"


def report_subject(run: str) -> str:
    return f"{PREFIX}.{run}.report"


def go_subject(run: str) -> str:
    return f"{PREFIX}.{run}.go"


def stop_subject(run: str) -> str:
    return f"{PREFIX}.{run}.stop"


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class WorkerError(Exception):
    """A one-line reason a worker (or coordinator) could not talk to NATS."""


def check_token(kind: str, value: str) -> str:
    if not _TOKEN.match(value):
        raise ValueError(f"invalid {kind} {value!r}: use letters, digits, '_' and '-'")
    return value


def check_nats_url(url: str) -> str:
    """``url`` if it looks like a NATS server URL, else ``ValueError`` naming the problem."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{url!r} is not a NATS URL ({exc})") from None
    if parts.scheme not in _URL_SCHEMES or not parts.hostname:
        raise ValueError(f"{url!r} is not a NATS URL (expected nats://HOST[:PORT])")
    if port == 0:
        raise ValueError(f"{url!r}: port 0 is not a server port")
    return url


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


async def wait_event(event: asyncio.Event, timeout: float) -> bool:
    """``event.wait()`` bounded by ``timeout``; False on timeout.

    Not ``asyncio.wait_for``: on Python 3.11 it swallows a cancellation that arrives as the
    awaited future completes (fixed in 3.12), and these waits run in loops whose event
    fires often -- a cancelled run then kept going.
    """
    try:
        async with asyncio.timeout(max(0.0, timeout)):
            await event.wait()
    except TimeoutError:
        return event.is_set()
    return True


async def connect_nats(url: str, *, name: str, timeout: float = 10.0,
                       auth: NatsCredentials | None = None) -> Any:
    """Connect (reconnecting forever afterwards); ``WorkerError`` if not up in ``timeout``.

    nats-py's own attempt limit also caps reconnects later, so the first connection is
    bounded here with a deadline instead, and the last low-level error names the cause.
    """
    check_nats_url(url)
    errors: list[BaseException] = []
    connected = False

    async def on_error(exc: BaseException) -> None:
        if connected:
            log.warning("nats (%s): %s", name, _reason(exc))
        else:
            errors.append(exc)

    try:
        async with asyncio.timeout(timeout):
            nc = await nats.connect(
                url, name=name, error_cb=on_error, max_reconnect_attempts=-1,
                reconnect_time_wait=0.5, connect_timeout=max(0.5, min(2.0, timeout)),
                **(connect_options(auth, url, "mesh worker nats") if auth else {}))
    except (TimeoutError, OSError, nats.errors.Error) as exc:
        why = _reason(errors[-1]) if errors else _reason(exc)
        raise WorkerError(f"cannot connect to NATS at {url}: {why}") from None
    connected = True
    return nc


@dataclass(frozen=True)
class JobSpec:
    """One worker's share of a scale run (the body of a job request)."""

    run: str
    agents: int
    first_index: int
    rate_per_agent: float
    duration_s: float
    ae_interval: float = 5.0
    seed: int = 0
    tasks: int = 32  # bounded task set (see the module docstring)
    presence_ttl: float = 90.0  # beacons every ttl/3 (at most 30 s)
    report_interval: float = 1.0
    digest_interval: float = 0.25  # how often digests are recomputed while settling
    deadline_s: float = 600.0  # the job stops itself this long after it was accepted

    def __post_init__(self) -> None:
        check_token("run id", self.run)
        if self.agents < 1 or self.first_index < 0 or self.tasks < 1:
            raise ValueError("agents and tasks must be >= 1, first_index >= 0")
        if self.rate_per_agent < 0 or self.duration_s < 0:
            raise ValueError("rate_per_agent and duration_s must be >= 0")
        for name in ("ae_interval", "presence_ttl", "report_interval", "digest_interval",
                     "deadline_s"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")

    @classmethod
    def from_json(cls, data: Any) -> JobSpec:
        if not isinstance(data, dict):
            raise ValueError("job must be a JSON object")
        unknown = set(data) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown job fields: {', '.join(sorted(unknown))}")
        try:
            kw = {k: (str(v) if k == "run" else
                      int(v) if k in ("agents", "first_index", "seed", "tasks") else float(v))
                  for k, v in data.items()}
            return cls(**kw)
        except TypeError as exc:
            raise ValueError(str(exc)) from None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def agent_identity(seed: int, index: int) -> AgentIdentity:
    """The deterministic identity of global agent ``index`` in a run seeded ``seed``."""
    return AgentIdentity.from_seed(f"opsconsole-mesh-scale-{seed}-{index}".encode())


class GcPauses:
    """Longest garbage-collector pause per interval: the harness's own stalls must be
    visible next to the latency they inflate."""

    def __init__(self) -> None:
        self.max_s = 0.0
        self.total_s = 0.0
        self._t0 = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._cb)

    def remove(self) -> None:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(self._cb)

    def _cb(self, phase: str, _info: dict[str, Any]) -> None:
        if phase == "start":
            self._t0 = time.perf_counter()
        else:
            pause = time.perf_counter() - self._t0
            self.total_s += pause
            self.max_s = max(self.max_s, pause)

    def take_max(self) -> float:
        value, self.max_s = self.max_s, 0.0
        return value


@functools.cache
def _this_process() -> psutil.Process:
    return psutil.Process()


def _rss_bytes() -> int:
    with contextlib.suppress(Exception):
        return int(_this_process().memory_info().rss)
    return 0


def _cores() -> int:
    with contextlib.suppress(AttributeError, OSError):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


class _Job:
    """One run's agents on this worker: start, load, settle (anti-entropy), stop."""

    def __init__(self, nc: Any, worker: str, spec: JobSpec) -> None:
        self.nc = nc
        self.worker = worker
        self.spec = spec
        self.transport = NatsTransport(nc, spec.run)
        self.agents: list[MeshAgent] = []
        self.phase = "starting"
        self.go = asyncio.Event()
        self.stopped = asyncio.Event()
        self.stop_reason = ""
        self._subs: list[Any] = []
        self._interval = Latency()
        self._unique = 0
        self._sent = 0
        self._driver_errors = 0
        self._lag_max = 0.0
        self._late = 0  # ops sent more than 100 ms after their scheduled time
        self._digests: dict[str, int] = {}
        self._load: dict[str, Any] | None = None
        self._seq = 0
        self._last: dict[str, float] = {}
        self._rss_peak = 0
        self._cpu0 = time.process_time()
        self._t0 = time.monotonic()
        self._nc0 = dict(nc.stats)
        self._report_lock = asyncio.Lock()
        self.gc = GcPauses()
        self._frozen = False

    # ---- wiring ---------------------------------------------------------------------------

    async def subscribe(self) -> None:
        """Subscribe to gossip, go and stop before the job is acknowledged."""
        await self.transport.start()

        async def on_go(_msg: Any) -> None:
            self.go.set()

        async def on_stop(_msg: Any) -> None:
            self.stop("stop requested")

        self._subs.append(await self.nc.subscribe(go_subject(self.spec.run), cb=on_go))
        self._subs.append(await self.nc.subscribe(stop_subject(self.spec.run), cb=on_stop))
        await server_has_seen(self.nc)

    def stop(self, reason: str) -> None:
        if not self.stopped.is_set():
            self.stop_reason = reason
            self.stopped.set()

    def _sample(self, _agent: MeshAgent, _op: Op, latency_s: float) -> None:
        self._unique += 1
        self._interval.record_s(latency_s)

    def _sample_first_author(self, first: str) -> Callable[[MeshAgent, Op, float], None]:
        def sample(agent: MeshAgent, op: Op, latency_s: float) -> None:
            if op.author == first:
                self._sample(agent, op, latency_s)
        return sample

    # ---- the job ----------------------------------------------------------------------------

    async def run(self) -> None:
        """The whole job; returns once it stopped (told to, deadline, or an error)."""
        spec = self.spec
        reporter = asyncio.create_task(self._reporter(), name=f"mesh-report-{spec.run}")
        try:
            self.gc.install()
            async with asyncio.timeout(spec.deadline_s):
                await self._until_stopped(self._start_agents())
                await self._until_stopped(self.go.wait())
                await self._until_stopped(self._drive())
                await self._enter("settle")
                await self._until_stopped(self._settle())
        except TimeoutError:
            self.stop("deadline")
            log.warning("mesh job %s: deadline of %.0f s reached", spec.run, spec.deadline_s)
        except _Stopped:
            pass
        finally:
            await cancel_and_wait(reporter)
            await self._teardown()
            self.gc.remove()
            if self._frozen:
                gc.unfreeze()  # the next job's collector may reclaim this job's agents

    async def _until_stopped(self, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` to its end; ``_Stopped`` (and ``coro`` cancelled) when a stop comes
        first."""
        if self.stopped.is_set():
            coro.close()
            raise _Stopped
        task = asyncio.ensure_future(coro)
        stopper = asyncio.ensure_future(self.stopped.wait())
        try:
            await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
        if task.cancelled() or self.stopped.is_set():
            raise _Stopped

    async def _start_agents(self) -> None:
        spec = self.spec
        for k in range(spec.agents):
            index = spec.first_index + k
            if k == 0:
                on_op: Callable[[MeshAgent, Op, float], None] | None = self._sample
            elif k == 1:
                on_op = self._sample_first_author(self.agents[0].agent_id)
            else:
                on_op = None
            agent = MeshAgent(agent_identity(spec.seed, index), self.transport,
                              ae_interval=spec.ae_interval, presence_ttl=spec.presence_ttl,
                              warmup_beacons=(), on_op=on_op, seed=spec.seed * 1_000_003 + index)
            await agent.start()
            self.agents.append(agent)
            if k % 25 == 24:
                await asyncio.sleep(0)  # let deliveries and reports through
        # Everything allocated so far lives for the whole job: move it out of the
        # collector's reach, or each full collection rescans it (measured ~170 ms at 500
        # agents, a stall that shows up as propagation latency).
        gc.collect()
        gc.freeze()
        self._frozen = True
        await self._enter("ready")

    async def _enter(self, phase: str) -> None:
        """Switch phase and report at once (the coordinator waits on phase changes)."""
        self.phase = phase
        await self.report()

    async def _send_op(self, k: int, rng: random.Random, added: list[bool]) -> None:
        agent = self.agents[k]
        spec = self.spec
        index = spec.first_index + k
        if not added[k]:
            added[k] = True
            await agent.add_task("scale task", task_id=f"task-{index % spec.tasks}")
            return
        task = f"task-{rng.randrange(spec.tasks)}"
        if not agent.tasks.present(task):
            task = f"task-{index % spec.tasks}"
        r = rng.random()
        if r < 0.05 and await agent.claim(task):
            return
        if 0.05 <= r < 0.10 and await agent.complete(task):
            return
        await agent.update(task, **{f"f{rng.randrange(4)}": agent.stats.ops_local})

    async def _drive(self) -> None:
        """Open-loop schedule: agent k sends at phase_k + n / rate until ``duration_s``."""
        spec = self.spec
        await self._enter("load")
        loop = asyncio.get_running_loop()
        rng = random.Random(spec.seed * 7919 + spec.first_index)
        start = loop.time()
        end = start + spec.duration_s
        base = self._totals()
        cpu0 = time.process_time()
        added = [False] * len(self.agents)
        heap: list[tuple[float, int]] = []
        period = 1.0 / spec.rate_per_agent if spec.rate_per_agent > 0 else 0.0
        if period:
            heap = [(start + rng.uniform(0, period), k) for k in range(len(self.agents))]
            heapq.heapify(heap)
        burst = 0
        while heap and heap[0][0] < end:
            due, k = heap[0]
            now = loop.time()
            if due > now:
                burst = 0
                await asyncio.sleep(due - now)
                continue
            heapq.heappop(heap)
            lag = now - due
            self._lag_max = max(self._lag_max, lag)
            if lag > 0.1:
                self._late += 1
            try:
                await self._send_op(k, rng, added)
                self._sent += 1
            except Exception as exc:
                self._driver_errors += 1
                if self._driver_errors <= 3:
                    log.warning("mesh job %s: send failed: %s", spec.run, _reason(exc))
            heapq.heappush(heap, (due + period, k))
            burst += 1
            if burst % 64 == 0:
                await asyncio.sleep(0)  # behind schedule: still let receivers run
        await asyncio.sleep(max(0.0, end - loop.time()))
        totals = self._totals()
        self._load = {k: totals[k] - base[k] for k in totals}
        self._load["s"] = loop.time() - start
        self._load["cpu_s"] = time.process_time() - cpu0

    async def _settle(self) -> None:
        """Anti-entropy keeps running; recompute digests, report when they change."""
        spec = self.spec
        while True:
            counts: Counter[str] = Counter()
            for k, agent in enumerate(self.agents):
                counts[agent.digest()[:DIGEST_CHARS]] += 1
                if k % 16 == 15:
                    await asyncio.sleep(0)  # a digest costs ms at 1000 authors
            digests = dict(counts)
            if digests != self._digests:
                self._digests = digests
                await self.report()
            await asyncio.sleep(spec.digest_interval)

    async def _reporter(self) -> None:
        while True:
            await asyncio.sleep(self.spec.report_interval)
            try:
                await self.report()
            except Exception as exc:  # a report lost is not a reason to stop the load
                log.warning("mesh job %s: report failed: %s", self.spec.run, _reason(exc))

    def _totals(self) -> dict[str, int]:
        stats = self.nc.stats
        return {
            "sent": self._sent,
            "delivered": sum(a.stats.ops_applied for a in self.agents),
            "unique": self._unique,
            "transport_deliveries": self.transport.stats.deliveries,
            **{f"nats_{k}": stats[k] - self._nc0[k]
               for k in ("in_bytes", "out_bytes", "in_msgs", "out_msgs")},
        }

    def _errors(self) -> dict[str, int]:
        t = self.transport.stats
        return {"agent": sum(a.stats.errors for a in self.agents),
                "handler": t.handler_errors, "rejected": sum(t.rejected.values()),
                "send": self._driver_errors}

    async def report(self) -> None:
        """Publish one report (phase, interval histogram, counters, digests)."""
        async with self._report_lock:  # a phase report and the periodic one never interleave
            interval, self._interval = self._interval, Latency()
            lag, self._lag_max = self._lag_max, 0.0
            now = time.monotonic()
            totals = self._totals()
            last = self._last or {k: 0 for k in totals}
            dt = now - self._last.get("t", self._t0)
            rss = _rss_bytes()
            self._rss_peak = max(self._rss_peak, rss)
            errors = self._errors()
            self._seq += 1
            body: dict[str, Any] = {
                "worker": self.worker, "run": self.spec.run, "seq": self._seq,
                "phase": self.phase, "elapsed_s": round(now - self._t0, 3),
                "interval": interval.encode(), "samples": interval.count,
                "dt": round(dt, 4),
                **totals, "d": {k: totals[k] - int(last.get(k, 0)) for k in totals},
                "agents": self.spec.agents,
                "agents_started": len(self.agents), "rss_bytes": rss,
                "rss_peak_bytes": self._rss_peak, "cpu_s": round(time.process_time()
                                                                 - self._cpu0, 3),
                "errors": sum(errors.values()), "error_kinds": errors,
                "lag_ms_max": round(lag * 1000, 3), "late": self._late,
                "gc_ms_max": round(self.gc.take_max() * 1000, 3),
                "gc_s": round(self.gc.total_s, 3),
                "load": self._load,
            }
            if self.phase in ("settle", "done") and self._digests:
                body["digests"] = self._digests
            if self.phase == "done":
                body["stop_reason"] = self.stop_reason
            self._last = {**totals, "t": now}
            await self.nc.publish(report_subject(self.spec.run), _dumps(body))

    async def _teardown(self) -> None:
        # No goodbye beacons: every other agent is stopping too, and 1000 byes would
        # each reach 1000 agents. The stopped agents still hold the final counters.
        await asyncio.gather(*(a.stop(graceful=False) for a in self.agents),
                             return_exceptions=True)
        await self.transport.close()
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
        self.phase = "done"
        with contextlib.suppress(Exception):
            await self.report()
            await self.nc.flush(timeout=5)


class _Stopped(Exception):
    """The job was told to stop (or hit its deadline) before a phase ended."""


class MeshWorker:
    """Answers discovery, runs one job at a time, until ``quit`` or :meth:`close`."""

    def __init__(self, nc: Any, name: str) -> None:
        self.nc = nc
        self.name = check_token("worker name", name)
        self.quit = asyncio.Event()
        self.job: _Job | None = None
        self.job_task: asyncio.Task[None] | None = None
        self.jobs_done = 0
        self._subs: list[Any] = []

    async def start(self) -> None:
        self._subs = [
            await self.nc.subscribe(DISCOVER, cb=self._on_discover),
            await self.nc.subscribe(job_subject(self.name), cb=self._on_job),
            await self.nc.subscribe(quit_subject(self.name), cb=self._on_quit),
        ]
        await server_has_seen(self.nc)

    async def _on_discover(self, msg: Any) -> None:
        if msg.reply:
            await self.nc.publish(msg.reply, _dumps({
                "name": self.name, "pid": os.getpid(), "cores": _cores(),
                "host": socket.gethostname(),
                "busy": self.job.spec.run if self.job is not None else None}))

    async def _on_quit(self, _msg: Any) -> None:
        self.quit.set()

    async def _on_job(self, msg: Any) -> None:
        def reply(body: dict[str, Any]) -> Awaitable[None]:
            return self.nc.publish(msg.reply, _dumps(body)) if msg.reply else asyncio.sleep(0)

        if self.job is not None:
            await reply({"accepted": False, "error": f"busy with run {self.job.spec.run}"})
            return
        try:
            spec = JobSpec.from_json(json.loads(msg.data))
        except ValueError as exc:
            await reply({"accepted": False, "error": f"bad job: {exc}"})
            return
        job = self.job = _Job(self.nc, self.name, spec)
        try:
            await job.subscribe()
        except Exception as exc:
            self.job = None
            await job.transport.close()
            await reply({"accepted": False, "error": f"subscribe failed: {_reason(exc)}"})
            return
        self.job_task = asyncio.create_task(self._run_job(job), name=f"mesh-job-{spec.run}")
        await reply({"accepted": True, "name": self.name, "pid": os.getpid()})

    async def _run_job(self, job: _Job) -> None:
        try:
            await job.run()
        except Exception:
            log.exception("mesh job %s failed", job.spec.run)
        finally:
            self.jobs_done += 1
            if self.job is job:
                self.job = None

    async def close(self) -> None:
        job, task = self.job, self.job_task
        if job is not None:
            job.stop("worker exiting")
        if task is not None:
            try:
                async with asyncio.timeout(15):
                    await asyncio.shield(task)
            except TimeoutError:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for sub in self._subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()


def default_name() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0]) or "host"
    return f"{host}-{os.getpid()}"


async def run_worker(nats_url: str, name: str | None = None, *,
                     stop: asyncio.Event | None = None,
                     connect_timeout: float = 10.0, auth: NatsCredentials | None = None) -> None:
    """Serve jobs until ``quit`` on NATS or ``stop`` is set; ``WorkerError`` when NATS is
    unreachable at start (later disconnects are retried forever)."""
    worker_name = check_token("worker name", name or default_name())
    nc = await connect_nats(nats_url, name=f"opsconsole-mesh-worker-{worker_name}",
                            timeout=connect_timeout, auth=auth)
    worker = MeshWorker(nc, worker_name)
    try:
        await worker.start()
        waits = [asyncio.ensure_future(worker.quit.wait())]
        if stop is not None:
            waits.append(asyncio.ensure_future(stop.wait()))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()
    finally:
        await worker.close()
        with contextlib.suppress(Exception):
            await nc.drain()
        if not nc.is_closed:
            await nc.close()


async def serve(nats_url: str, name: str | None, *, connect_timeout: float = 10.0,
                exit_on_stdin_eof: bool = False, auth: NatsCredentials | None = None) -> None:
    """``run_worker`` until SIGTERM / SIGINT (and, for spawned workers, stdin EOF)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    watcher: asyncio.Task[None] | None = None
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    if exit_on_stdin_eof:
        # A coordinator that spawned us keeps our stdin open; when it dies (even by
        # SIGKILL) the pipe closes and we exit instead of lingering as an orphan.
        reader = asyncio.StreamReader()
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

        async def watch() -> None:
            with contextlib.suppress(Exception):
                while await reader.read(4096):
                    pass
            stop.set()

        watcher = loop.create_task(watch())
    try:
        await run_worker(nats_url, name, stop=stop, connect_timeout=connect_timeout, auth=auth)
    finally:
        if watcher is not None:
            watcher.cancel()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m opsconsole.systems.mesh.scale_worker",
                                     description="host simulated mesh agents for scale runs")
    parser.add_argument("--nats", required=True, metavar="URL")
    parser.add_argument("--name", default=None, help="worker name (default HOST-PID)")
    parser.add_argument("--connect-timeout", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--exit-on-stdin-eof", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--nats-auth", default=None, metavar="JSON",
                        help="NATS credentials and TLS by reference (inventory keys: "
                             "user, password_env, credentials_file, ca_cert, ...)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    from ...report.redact import Redactor, install_log_redaction

    install_log_redaction(Redactor())
    try:
        check_nats_url(args.nats)
        if args.name is not None:
            check_token("worker name", args.name)
        auth = (NatsCredentials.model_validate_json(args.nats_auth) if args.nats_auth
                else None)
        asyncio.run(serve(args.nats, args.name, connect_timeout=args.connect_timeout,
                          exit_on_stdin_eof=args.exit_on_stdin_eof, auth=auth))
    except ValidationError as exc:
        print(f"scale_worker: --nats-auth: {validation_message(exc)}", file=sys.stderr)
        return 2
    except (ValueError, WorkerError, UserError) as exc:
        print(f"scale_worker: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
