"""Coordinator of a distributed `mesh.scale` run: workers over NATS, merged HDR histograms.

``run_scale`` finds its workers over NATS (``opsconsole.mesh.discover``), gives each a share
of the agents, starts the load on all of them at once (``go``), merges the interval
histograms they stream back, then times convergence (every hosted agent's task-list digest
equal) and stops them. The protocol is in :mod:`opsconsole.systems.mesh.scale_worker`.

Workers: with ``spawn_local`` the coordinator starts them itself as child processes
(``python -m opsconsole.systems.mesh.scale_worker --nats URL --name w<i>-<run>``; the run id in the
name keeps two concurrent runs on one NATS apart) and always stops them at the end, also
on errors and cancellation; a spawned worker also exits by itself when the coordinator's
process dies (its stdin closes). Workers on other hosts are started there with
``opsconsole agent --nats nats://<server reachable from that host>:4222 [--name NAME]``
(e.g. over SSH with asyncssh, one per core) before the run, and named in
``workers=["name", ...]`` with ``spawn_local=False``; they keep running between runs.
Latency then compares clocks of different hosts (signing time vs. receive time), so keep
them NTP-synchronised or read the figures as an upper bound plus clock skew.

Every worker hosts its agents on ONE NATS connection: the server sends each broadcast op
once per worker, the worker verifies it once and fans it out in process. Per-agent figures
(memory, bandwidth) are therefore per-worker figures divided by the agents hosted.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import json
import logging
import os
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

import nats

from ...core.tasks import cancel_and_wait
from ...load.histogram import Latency
from ...targets.nats import NatsCredentials
from .scale_worker import (
    DISCOVER,
    JobSpec,
    WorkerError,
    check_token,
    connect_nats,
    go_subject,
    job_subject,
    quit_subject,
    report_subject,
    stop_subject,
    wait_event,
)

log = logging.getLogger(__name__)

STALE_S = 30.0
"""A worker whose reports stop for this long (or whose process exited) is counted lost."""


class ScaleError(RuntimeError):
    """The run could not happen (NATS unreachable, no worker registered or accepted)."""


@dataclass(frozen=True)
class ScaleInterval:
    """Live figures for one display tick (about once a second)."""

    elapsed_s: float  # since run_scale started
    phase: str  # starting | load | settle | stopping
    offered_msgs: float  # ops published per second, all workers, last interval
    throughput_msgs: float  # distinct ops received per second, mean over workers
    deliveries_per_s: float  # ops applied by agents per second, all workers
    samples: int  # latency samples so far (the merged histogram's count)
    interval_p99_ms: float  # p99 of the samples that arrived since the last tick
    errors: int
    agents_started: int
    agents_requested: int
    workers_reporting: int
    distinct_digests: int | None  # while settling: 1 = converged
    lag_ms_max: float = 0.0  # worst send lateness in a worker's last interval
    gc_ms_max: float = 0.0  # longest GC pause in a worker's last interval


@dataclass
class WorkerSummary:
    name: str
    pid: int = 0
    host: str = ""
    agents: int = 0  # assigned
    agents_started: int = 0
    phase: str = "unknown"
    load_s: float = 0.0
    sent: int = 0  # ops published during the load window
    delivered: int = 0  # ops applied by this worker's agents during the window
    unique: int = 0  # distinct ops that reached this worker during the window
    nats_bytes: int = 0  # connection payload bytes in + out during the window
    rss_peak_bytes: int = 0
    cpu_s: float = 0.0  # process CPU seconds during the load window
    errors: int = 0
    lag_ms_max: float = 0.0  # worst lateness of a scheduled send
    late: int = 0  # sends more than 100 ms behind schedule
    gc_ms_max: float = 0.0  # longest garbage-collector pause seen
    gc_s: float = 0.0  # total time in the garbage collector during the job
    lost: str = ""  # why the worker was given up on, if it was


@dataclass
class ScaleResult:
    """The figures of one run. Definitions (``W`` = workers that ran the load):

    - ``p50_ms`` / ``p95_ms`` / ``p99_ms``: propagation latency (receive wall clock - the
      op's signing time) over one sample per distinct op per worker, merged HDR histogram.
    - ``throughput_msgs``: delivered unique messages per second = for each worker, the
      number of distinct gossip ops that reached it (first applied there from gossip, i.e.
      one per op however many local agents applied it) during its load window, divided by
      the window's length; averaged over the W workers. Every worker subscribes to all
      gossip, so at full delivery this equals ``agents x rate``.
    - ``deliveries_per_s``: ops applied from gossip by individual agents per second, summed
      over workers (≈ agents x (agents - 1) x rate at full delivery).
    - ``mem_mb_per_agent``: max over workers of peak RSS / agents hosted, MiB (includes the
      interpreter's own ~50-60 MiB, spread over the agents).
    - ``bandwidth_kbps_per_agent``: max over workers of the worker's NATS connection
      payload bytes in + out per second of load window / agents hosted, in KB/s (1000
      bytes/s; nats-py counts payload bytes, not protocol framing). Amortised: one
      connection carries each message once for all its agents; ``connection_kbps`` is what
      one connection moved, i.e. what a lone agent on its own connection would receive.
    - ``connection_success_rate``: min(workers registered / workers expected, agents
      started / agents requested).
    - ``convergence_seconds``: from the moment every worker had finished its load window
      (the coordinator saw the last ``settle`` report) to the report that showed every
      started agent with the same digest; resolution ≈ the workers' digest interval
      (0.25 s) plus the time to recompute digests. When not converged within
      ``converge_timeout_s`` it holds the time waited and ``converged`` is False.
    """

    p50_ms: float
    p95_ms: float
    p99_ms: float
    throughput_msgs: float
    deliveries_per_s: float
    mem_mb_per_agent: float
    bandwidth_kbps_per_agent: float
    connection_success_rate: float
    convergence_seconds: float
    agents: int  # agents started
    workers: int  # workers that ran the load
    converged: bool = False
    offered_msgs: float = 0.0  # ops published per second, all workers
    connection_kbps: float = 0.0
    workers_registered_rate: float = 0.0
    agents_started_rate: float = 0.0
    errors: int = 0
    load_s: float = 0.0  # mean load-window length
    run: str = ""
    latency: Latency = field(default_factory=Latency, repr=False)
    per_worker: list[WorkerSummary] = field(default_factory=list)

    METRICS = ("p50_ms", "p95_ms", "p99_ms", "throughput_msgs", "deliveries_per_s",
               "mem_mb_per_agent", "bandwidth_kbps_per_agent", "connection_success_rate",
               "convergence_seconds", "agents", "workers")

    def metrics(self) -> dict[str, float]:
        """The named metrics (exact names used by the `mesh.scale` scenario)."""
        return {name: float(getattr(self, name)) for name in self.METRICS}


IntervalCallback = Callable[[Latency, ScaleInterval], Any]


# ---------------------------------------------------------------- spawned workers
class LocalWorkers:
    """Worker processes started by this coordinator; :meth:`close` always reaps them."""

    def __init__(self) -> None:
        self.procs: dict[str, asyncio.subprocess.Process] = {}
        self._logs: dict[str, IO[bytes]] = {}

    async def spawn(self, nats_url: str, names: list[str],
                    auth: NatsCredentials | None = None) -> None:
        extra = ["--nats-auth", json.dumps(auth.dump())] if auth is not None else []
        for name in names:
            err = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
            self._logs[name] = err
            self.procs[name] = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "opsconsole.systems.mesh.scale_worker", "--nats", nats_url,
                "--name", name, "--exit-on-stdin-eof", *extra, stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL, stderr=err,
                env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def exited(self) -> dict[str, str]:
        """Workers whose process ended: name -> "exit code N: last stderr line"."""
        out = {}
        for name, proc in self.procs.items():
            if proc.returncode is not None:
                out[name] = f"exit code {proc.returncode}" + (
                    f": {tail}" if (tail := self.stderr_tail(name)) else "")
        return out

    def stderr_tail(self, name: str) -> str:
        f = self._logs.get(name)
        if f is None:
            return ""
        with contextlib.suppress(OSError):
            f.seek(0)
            lines = f.read().decode(errors="replace").strip().splitlines()
            return lines[-1][:300] if lines else ""
        return ""

    def alive(self) -> list[int]:
        return [p.pid for p in self.procs.values() if p.returncode is None]

    async def close(self, nc: Any | None = None, grace_s: float = 10.0) -> None:
        """Ask politely (NATS quit, stdin EOF), then SIGTERM, then SIGKILL."""
        try:
            if nc is not None and not nc.is_closed:
                with contextlib.suppress(Exception):
                    for name in self.procs:
                        await nc.publish(quit_subject(name), b"")
                    await nc.flush(timeout=2)
            for proc in self.procs.values():
                if proc.stdin is not None:
                    with contextlib.suppress(Exception):
                        proc.stdin.close()
            if not await self._wait_all(grace_s):
                for proc in self.procs.values():
                    if proc.returncode is None:
                        with contextlib.suppress(ProcessLookupError):
                            proc.terminate()
                await self._wait_all(5.0)
        finally:  # also when cancelled while waiting
            for proc in self.procs.values():
                if proc.returncode is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(6.0):
                    await self._wait_all(5.0)
            for f in self._logs.values():
                f.close()
            self._logs.clear()

    async def _wait_all(self, timeout: float) -> bool:
        waits = [p.wait() for p in self.procs.values() if p.returncode is None]
        if not waits:
            return True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.gather(*waits)
        return all(p.returncode is not None for p in self.procs.values())


# ---------------------------------------------------------------- discovery
async def discover_workers(nc: Any, *, names: list[str] | None = None, count: int = 0,
                           timeout: float = 30.0, interval: float = 0.5,
                           abort: Callable[[], str | None] | None = None,
                           ) -> dict[str, dict[str, Any]]:
    """Ask ``opsconsole.mesh.discover`` until the wanted workers answered or ``timeout``.

    ``names``: exactly these workers; else the first ``count`` idle ones (by name). Returns
    name -> discovery reply for those found (possibly fewer than wanted at the deadline).
    ``abort`` is polled: a non-empty string ends the wait early (a spawned worker died).
    """
    found: dict[str, dict[str, Any]] = {}
    changed = asyncio.Event()

    async def on_reply(msg: Any) -> None:
        with contextlib.suppress(ValueError, TypeError, KeyError):
            info = json.loads(msg.data)
            found[str(info["name"])] = info
            changed.set()

    def selected() -> dict[str, dict[str, Any]]:
        if names is not None:
            return {n: found[n] for n in names if n in found}
        idle = sorted(n for n, info in found.items() if not info.get("busy"))
        return {n: found[n] for n in idle[:count]}

    def enough() -> bool:
        return len(selected()) >= (len(names) if names is not None else count)

    inbox = nc.new_inbox()
    sub = await nc.subscribe(inbox, cb=on_reply)
    try:
        deadline = time.monotonic() + timeout
        while not enough() and time.monotonic() < deadline:
            if abort is not None and (why := abort()):
                raise ScaleError(why)
            changed.clear()
            await nc.publish(DISCOVER, b"{}", reply=inbox)
            await wait_event(changed, min(interval, deadline - time.monotonic()))
            if changed.is_set():
                await asyncio.sleep(0.05)  # let the other replies of this round arrive
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
    return selected()


# ---------------------------------------------------------------- the run
class _Run:
    """Reports of one run, per worker, and the merged histogram."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.latency = Latency()
        self.tick = Latency()  # samples since the last display tick
        self.latest: dict[str, dict[str, Any]] = {}  # worker -> last report
        self.seen_at: dict[str, float] = {}
        self.rss_peak: dict[str, int] = {}
        self.lag_max: dict[str, float] = {}
        self.gc_max: dict[str, float] = {}
        self.lost: dict[str, str] = {}
        self.accepted: dict[str, int] = {}  # worker -> agents assigned
        self.changed = asyncio.Event()
        self.phase = "starting"
        self.started = time.monotonic()

    def on_report(self, data: bytes) -> None:
        try:
            rep = json.loads(data)
            name = rep["worker"]
        except (ValueError, TypeError, KeyError):
            return
        if name not in self.accepted or rep.get("run") != self.run:
            return
        prev = self.latest.get(name)
        if prev is not None and int(rep.get("seq", 0)) <= int(prev.get("seq", 0)):
            return  # out of order (reports are fire-and-forget)
        with contextlib.suppress(Exception):
            self.latency.add_encoded(rep.get("interval") or "")
            self.tick.add_encoded(rep.get("interval") or "")
        self.latest[name] = rep
        self.seen_at[name] = time.monotonic()
        self.rss_peak[name] = max(self.rss_peak.get(name, 0), int(rep.get("rss_peak_bytes", 0)))
        self.lag_max[name] = max(self.lag_max.get(name, 0.0), float(rep.get("lag_ms_max", 0)))
        self.gc_max[name] = max(self.gc_max.get(name, 0.0), float(rep.get("gc_ms_max", 0)))
        self.changed.set()

    def active(self) -> list[str]:
        return [n for n in self.accepted if n not in self.lost]

    def phase_of(self, name: str) -> str:
        return str(self.latest.get(name, {}).get("phase", "unknown"))

    def check_lost(self, spawned: LocalWorkers | None) -> None:
        now = time.monotonic()
        exited = spawned.exited() if spawned is not None else {}
        for name in self.active():
            if self.phase_of(name) == "done":
                continue
            if name in exited:
                self.lost[name] = f"process ended ({exited[name]})"
            elif now - self.seen_at.get(name, self.started) > STALE_S:
                self.lost[name] = f"no report for {STALE_S:.0f} s"
            else:
                continue
            log.warning("mesh scale %s: worker %s lost: %s", self.run, name, self.lost[name])
            self.changed.set()

    def digests(self) -> tuple[dict[str, int], int]:
        """Union of the active workers' latest digest counts, and agents covered."""
        union: dict[str, int] = {}
        for name in self.active():
            for d, n in (self.latest.get(name, {}).get("digests") or {}).items():
                union[d] = union.get(d, 0) + int(n)
        return union, sum(union.values())

    def agents_started(self) -> int:
        return sum(int(self.latest.get(n, {}).get("agents_started", 0)) for n in self.accepted)

    def interval(self, agents_requested: int) -> ScaleInterval:
        offered = throughput = deliveries = lag = gc_ms = 0.0
        errors = 0
        reporting = 0
        for name in self.active():
            rep = self.latest.get(name)
            if rep is None:
                continue
            reporting += 1
            errors += int(rep.get("errors", 0))
            lag = max(lag, float(rep.get("lag_ms_max", 0)))
            gc_ms = max(gc_ms, float(rep.get("gc_ms_max", 0)))
            dt = float(rep.get("dt") or 0)
            d = rep.get("d") or {}
            if dt > 0 and rep.get("phase") in ("load", "settle"):
                offered += d.get("sent", 0) / dt
                throughput += d.get("unique", 0) / dt
                deliveries += d.get("delivered", 0) / dt
        union, _ = self.digests()
        tick, self.tick = self.tick, Latency()
        return ScaleInterval(
            elapsed_s=time.monotonic() - self.started, phase=self.phase,
            offered_msgs=offered, throughput_msgs=throughput / max(1, reporting),
            deliveries_per_s=deliveries, samples=self.latency.count,
            interval_p99_ms=tick.percentile_ms(99.0), errors=errors,
            agents_started=self.agents_started(), agents_requested=agents_requested,
            workers_reporting=reporting,
            distinct_digests=len(union) if self.phase == "settle" else None,
            lag_ms_max=lag, gc_ms_max=gc_ms)


async def _call(callback: IntervalCallback, latency: Latency, stats: ScaleInterval) -> None:
    try:
        res = callback(latency, stats)
        if inspect.isawaitable(res):
            await res
    except Exception:
        log.exception("mesh scale: on_interval callback failed")


async def run_scale(nats_url: str, *, agents: int = 100, rate: float = 10.0,
                    duration_s: float = 60.0, workers: int | list[str] = 2,
                    spawn_local: bool = True, ae_interval: float = 5.0,
                    on_interval: IntervalCallback | None = None,
                    timeout_s: float | None = None, discover_timeout_s: float = 30.0,
                    converge_timeout_s: float = 60.0, tasks: int = 32,
                    presence_ttl: float = 90.0, seed: int | None = None,
                    report_interval: float = 1.0,
                    nats_auth: NatsCredentials | None = None) -> ScaleResult:
    """Run ``agents`` mesh agents x ``rate`` ops/s each for ``duration_s`` on workers.

    ``workers``: a count (spawned here when ``spawn_local``, else the first idle workers
    discovered) or names (spawned under those names, or already running elsewhere).
    ``on_interval(merged_latency, ScaleInterval)`` is called about once a second (it may
    be a coroutine function); ``merged_latency`` is cumulative over the run. Raises
    :class:`ScaleError` when the run cannot happen at all; fewer workers or agents than
    asked show in ``connection_success_rate`` instead. See :class:`ScaleResult`.
    """
    if agents < 1 or rate < 0 or duration_s < 0:
        raise ValueError("agents must be >= 1, rate and duration_s >= 0")
    names = [check_token("worker name", n) for n in workers] if isinstance(workers, list) \
        else None
    expected = len(names) if names is not None else int(workers)
    if expected < 1:
        raise ValueError("at least one worker")
    run_id = uuid.uuid4().hex[:12]
    seed = random.randrange(2**31) if seed is None else seed
    start_budget = 30.0 + 0.05 * agents  # agents start at ~1 ms each, beacons fan out
    load_budget = duration_s * 1.5 + 30.0
    if timeout_s is None:
        timeout_s = (discover_timeout_s + 10 + start_budget + load_budget
                     + converge_timeout_s + 30)
    spawned = LocalWorkers() if spawn_local else None
    nc: Any = None
    try:
        try:
            nc = await connect_nats(nats_url, name=f"opsconsole-mesh-coordinator-{run_id}",
                                    timeout=10.0, auth=nats_auth)
        except (WorkerError, ValueError) as exc:
            raise ScaleError(str(exc)) from None
        deadline = asyncio.timeout(timeout_s)
        try:
            async with deadline:
                return await _coordinate(
                    nc, spawned, nats_url, nats_auth=nats_auth, run_id=run_id, agents=agents,
                    rate=rate,
                    duration_s=duration_s, names=names, expected=expected,
                    ae_interval=ae_interval, on_interval=on_interval,
                    discover_timeout_s=discover_timeout_s, start_budget=start_budget,
                    load_budget=load_budget, converge_timeout_s=converge_timeout_s,
                    deadline_s=timeout_s + 30, tasks=tasks, presence_ttl=presence_ttl,
                    seed=seed, report_interval=report_interval)
        except TimeoutError as exc:
            if deadline.expired():
                raise ScaleError(f"scale run {run_id} did not finish within "
                                 f"{timeout_s:.0f} s") from None
            raise ScaleError(f"scale run {run_id}: NATS did not answer in time ({exc})") \
                from None
        except nats.errors.Error as exc:
            raise ScaleError(f"scale run {run_id}: NATS: {exc}") from None
    finally:
        try:
            if spawned is not None:
                await spawned.close(nc)
        finally:
            if nc is not None and not nc.is_closed:
                with contextlib.suppress(Exception):
                    await nc.close()


async def _coordinate(nc: Any, spawned: LocalWorkers | None, nats_url: str, *,
                      nats_auth: NatsCredentials | None, run_id: str,
                      agents: int, rate: float, duration_s: float, names: list[str] | None,
                      expected: int, ae_interval: float,
                      on_interval: IntervalCallback | None, discover_timeout_s: float,
                      start_budget: float, load_budget: float, converge_timeout_s: float,
                      deadline_s: float, tasks: int, presence_ttl: float, seed: int,
                      report_interval: float) -> ScaleResult:
    run = _Run(run_id)

    def abort() -> str | None:
        if spawned is None:
            return None
        dead = spawned.exited()
        if dead and len(dead) == len(spawned.procs):
            name, why = sorted(dead.items())[0]
            return f"every spawned worker exited; {name}: {why}"
        return None

    if spawned is not None:
        names = names or [f"w{i}-{run_id}" for i in range(expected)]
        await spawned.spawn(nats_url, names, nats_auth)
    found = await discover_workers(nc, names=names, count=expected,
                                   timeout=discover_timeout_s, abort=abort)
    if not found:
        detail = "; ".join(f"{n}: {why}" for n, why in sorted(
            (spawned.exited() if spawned else {}).items()))
        raise ScaleError(f"no mesh worker registered on {nats_url} within "
                         f"{discover_timeout_s:.0f} s" + (f" ({detail})" if detail else ""))
    registered = sorted(found)

    async def on_report(msg: Any) -> None:
        run.on_report(msg.data)

    sub = await nc.subscribe(report_subject(run_id), cb=on_report)
    ticker: asyncio.Task[None] | None = None
    try:
        # ---- jobs
        n = len(registered)
        shares = [agents // n + (1 if i < agents % n else 0) for i in range(n)]
        first = 0
        jobs: dict[str, JobSpec] = {}
        for name, share in zip(registered, shares, strict=True):
            if share:
                jobs[name] = JobSpec(
                    run=run_id, agents=share, first_index=first, rate_per_agent=rate,
                    duration_s=duration_s, ae_interval=ae_interval, seed=seed, tasks=tasks,
                    presence_ttl=presence_ttl, report_interval=report_interval,
                    deadline_s=deadline_s)
            first += share

        async def send_job(name: str, spec: JobSpec) -> tuple[str, str | None]:
            run.accepted[name] = spec.agents  # reports may arrive before the reply
            try:
                msg = await nc.request(job_subject(name), json.dumps(spec.to_json()).encode(),
                                       timeout=10)
                reply = json.loads(msg.data)
                if reply.get("accepted"):
                    return name, None
                return name, str(reply.get("error") or "rejected")
            except Exception as exc:
                return name, f"{type(exc).__name__}: {exc}".strip(": ")

        for name, error in await asyncio.gather(*(send_job(n, s) for n, s in jobs.items())):
            if error is not None:
                run.accepted.pop(name, None)
                log.warning("mesh scale %s: worker %s did not take the job: %s", run_id,
                            name, error)
        if not run.accepted:
            raise ScaleError(f"no mesh worker accepted the job ({', '.join(jobs)})")

        async def tick() -> None:
            while True:
                await asyncio.sleep(report_interval)
                run.check_lost(spawned)
                if on_interval is not None:
                    await _call(on_interval, run.latency, run.interval(agents))

        ticker = asyncio.create_task(tick(), name=f"mesh-scale-tick-{run_id}")

        async def wait_until(cond: Callable[[], bool], timeout: float) -> bool:
            deadline = time.monotonic() + timeout
            while not cond():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                run.changed.clear()
                await wait_event(run.changed, min(left, 1.0))
                run.check_lost(spawned)
            return True

        # ---- start: every worker ready (all its agents started), then go
        def all_in(*phases: str) -> Callable[[], bool]:
            return lambda: all(run.phase_of(n) in phases for n in run.active())

        if not await wait_until(all_in("ready", "load", "settle", "done"), start_budget):
            log.warning("mesh scale %s: not every worker ready after %.0f s; starting the "
                        "load anyway (late workers join when ready)", run_id, start_budget)
        if not run.active():
            raise ScaleError("every mesh worker was lost before the load started: "
                             + "; ".join(f"{k}: {v}" for k, v in run.lost.items()))
        run.phase = "load"
        await nc.publish(go_subject(run_id), b"{}")
        await nc.flush(timeout=5)

        # ---- load, then convergence
        await wait_until(lambda: all(run.latest.get(n, {}).get("load") is not None
                                   or run.phase_of(n) == "done" for n in run.active()),
                       load_budget)
        load_end = time.monotonic()
        run.phase = "settle"

        def converged() -> bool:
            union, covered = run.digests()
            want = sum(int(run.latest.get(n, {}).get("agents_started", 0))
                       for n in run.active())
            return len(union) == 1 and covered == want and want > 0

        ok = await wait_until(converged, converge_timeout_s)
        convergence_s = time.monotonic() - load_end

        # ---- stop
        run.phase = "stopping"
        await nc.publish(stop_subject(run_id), b"{}")
        await nc.flush(timeout=5)
        await wait_until(all_in("done"), 20.0)
        if on_interval is not None:
            await _call(on_interval, run.latency, run.interval(agents))
        return _result(run, found, expected=expected, agents=agents, converged=ok,
                       convergence_s=convergence_s)
    finally:
        if ticker is not None:
            await cancel_and_wait(ticker)
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        if run.accepted and not nc.is_closed:  # a failed or cancelled run: stop the load
            with contextlib.suppress(Exception):
                await nc.publish(stop_subject(run_id), b"{}")
                await nc.flush(timeout=2)


def _result(run: _Run, found: dict[str, dict[str, Any]], *, expected: int, agents: int,
            converged: bool, convergence_s: float) -> ScaleResult:
    summaries: list[WorkerSummary] = []
    for name, assigned in sorted(run.accepted.items()):
        rep = run.latest.get(name, {})
        load = rep.get("load") or {}
        info = found.get(name, {})
        summaries.append(WorkerSummary(
            name=name, pid=int(info.get("pid", 0)), host=str(info.get("host", "")),
            agents=assigned, agents_started=int(rep.get("agents_started", 0)),
            phase=str(rep.get("phase", "unknown")), load_s=float(load.get("s", 0.0)),
            sent=int(load.get("sent", 0)), delivered=int(load.get("delivered", 0)),
            unique=int(load.get("unique", 0)),
            nats_bytes=int(load.get("nats_in_bytes", 0)) + int(load.get("nats_out_bytes", 0)),
            rss_peak_bytes=run.rss_peak.get(name, 0), cpu_s=float(load.get("cpu_s", 0.0)),
            errors=int(rep.get("errors", 0)), lag_ms_max=run.lag_max.get(name, 0.0),
            late=int(rep.get("late", 0)), gc_ms_max=run.gc_max.get(name, 0.0),
            gc_s=float(rep.get("gc_s", 0.0)), lost=run.lost.get(name, "")))
    ran = [w for w in summaries if w.load_s > 0]
    started = sum(w.agents_started for w in summaries)

    def rate(x: float, w: WorkerSummary) -> float:
        return x / w.load_s if w.load_s > 0 else 0.0

    hosted = [w for w in ran if w.agents_started]
    lat = run.latency
    return ScaleResult(
        p50_ms=lat.percentile_ms(50.0), p95_ms=lat.percentile_ms(95.0),
        p99_ms=lat.percentile_ms(99.0),
        throughput_msgs=sum(rate(w.unique, w) for w in ran) / len(ran) if ran else 0.0,
        deliveries_per_s=sum(rate(w.delivered, w) for w in ran),
        mem_mb_per_agent=max((w.rss_peak_bytes / w.agents_started / 2**20
                              for w in summaries if w.agents_started), default=0.0),
        bandwidth_kbps_per_agent=max((rate(w.nats_bytes, w) / w.agents_started / 1000
                                      for w in hosted), default=0.0),
        connection_success_rate=min(len(found) / expected, started / agents),
        convergence_seconds=convergence_s, agents=started, workers=len(ran),
        converged=converged, offered_msgs=sum(rate(w.sent, w) for w in ran),
        connection_kbps=max((rate(w.nats_bytes, w) / 1000 for w in ran), default=0.0),
        workers_registered_rate=len(found) / expected, agents_started_rate=started / agents,
        errors=sum(w.errors for w in summaries),
        load_s=sum(w.load_s for w in ran) / len(ran) if ran else 0.0,
        run=run.run, latency=lat, per_worker=summaries)


def summary_line(res: ScaleResult) -> str:
    """One human line: the headline figures of a run."""
    return (f"{res.agents} agents on {res.workers} workers: p50/p95/p99 "
            f"{res.p50_ms:.1f}/{res.p95_ms:.1f}/{res.p99_ms:.1f} ms, "
            f"{res.throughput_msgs:.0f} msg/s ({res.deliveries_per_s:.0f} deliveries/s), "
            f"{res.mem_mb_per_agent:.2f} MiB/agent, {res.bandwidth_kbps_per_agent:.1f} "
            f"KB/s/agent, convergence {res.convergence_seconds:.2f} s"
            + ("" if res.converged else " (NOT converged)"))


__all__ = ["LocalWorkers", "ScaleError", "ScaleInterval", "ScaleResult", "WorkerSummary",
           "discover_workers", "run_scale", "summary_line"]
