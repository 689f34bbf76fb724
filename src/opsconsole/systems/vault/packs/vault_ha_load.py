"""`vault-ha.load`: open-loop constant-rate KV load on the active node, and --find-max.

The cluster is loaded exactly as deployed: the audit device stays on (checked before
and after), nothing is tuned for the run. Latency is measured from each request's
intended send time (see :mod:`opsconsole.load.openloop`), so above the knee the run
shows the backlog instead of throttling itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Callable
from typing import Any

from ....core.events import LoadReport
from ....load.openloop import LoadProgress, LoadResult, LoadSpec
from ....load.worker import LoadWorker
from ....scenarios.engine import Abort, Check, Outcome, Run, Scenario, outcome
from .. import request_metrics as requests
from ..checks import (
    WRITES_STEADY_KEY,
    leader_addr,
    vault_one_leader,
    vault_request,
    vault_token,
    vault_write_read,
)
from ..kv_load import kv_load_options
from .load_options import FIND_MAX_START_RPS, FIND_MAX_STEP_S, P99_TARGET_MS, LoadOptions

ERROR_RATE_TARGET = 0.001
THROUGHPUT_RATIO = 0.95
FIND_MAX_CAP_RPS = 8000.0
FIND_MAX_GROWTH = 1.5
FIND_MAX_BISECTIONS = 3

#: the generator child loads this (it knows no system itself)
KV_LOAD = "opsconsole.systems.vault.kv_load:VaultKvLoad"


NO_LEADER_ABORT_S = 5.0  # a cluster with no leader this long is not under load, it is down
SAMPLE_FRESH_S = 5.0  # an older probe sample says nothing about now


def leader_present(no_leader_limit_s: float = NO_LEADER_ABORT_S,
                   clock: Callable[[], float] = time.time) -> Check:
    """Safeguard: fails once no fresh probe sample has shown a leader for the limit.

    Leaderless time counts from the last fresh sample that showed exactly one reachable
    leader (or from the first evaluation); when no sample is fresh at all the probes are
    silent and nothing can be said (unknown).
    """
    last_seen: list[float] = []

    async def fn(run: Run) -> Outcome:
        now = clock()
        fresh = {n: v for n, v in run.state.vault.nodes.items() if now - v.ts < SAMPLE_FRESH_S}
        leaders = [n for n, v in fresh.items() if v.reachable and v.leader]
        if len(leaders) == 1:
            last_seen[:] = [now]
        elif not last_seen:
            last_seen.append(now)  # no leader at the first look: count from here
        if not fresh:
            return "unknown", {"reason": f"no Vault probe sample in the last "
                                         f"{SAMPLE_FRESH_S:g} s"}
        leaderless = now - last_seen[0]
        return outcome(leaderless < no_leader_limit_s, leaders=leaders,
                       leaderless_s=round(leaderless, 2), limit_s=no_leader_limit_s)

    return Check(f"the cluster has a leader (abort after {no_leader_limit_s:g} s without)", fn)


def meets_targets(res: LoadResult) -> bool:
    return (res.corrected.percentile_ms(99.0) < P99_TARGET_MS
            and res.error_rate < ERROR_RATE_TARGET
            and res.throughput_rps >= THROUGHPUT_RATIO * res.offered_rps)


class Load(Scenario):
    id = "vault-ha.load"
    title = "open-loop constant-rate KV load (90/10 read/write), HDR latency, audit on"
    Options = LoadOptions
    options: LoadOptions
    #: a read-only mix would still seed its key set: refused under read-only
    mutates = (WRITES_STEADY_KEY, "seed 100 KV keys, the load's write share, delete them")

    def budget_s(self) -> float:
        if self.options.find_max:  # growth steps up to the cap, then the bisections
            start = self.options.rate or FIND_MAX_START_RPS
            steps = max(0, math.ceil(math.log(FIND_MAX_CAP_RPS / start, FIND_MAX_GROWTH))) + 1
            return self.time_budget_s + (steps + FIND_MAX_BISECTIONS) * (
                self.options.duration or FIND_MAX_STEP_S)
        return self.time_budget_s + (self.options.duration or 30.0)

    def steady_state(self):
        return [vault_one_leader(), vault_write_read()]

    def safeguards(self):
        return [leader_present()]

    def plan(self):
        mix = "/".join(f"{w * 100:g}% {k}" for k, w in self.options.mix)
        if self.options.find_max:
            start = self.options.rate or FIND_MAX_START_RPS
            return [f"step the offered rate up from {start:g} req/s "
                    f"(x{FIND_MAX_GROWTH}, then bisect) in "
                    f"{self.options.duration or FIND_MAX_STEP_S:g} s steps, {mix}",
                    f"report max_rps: the highest rate with p99 < {P99_TARGET_MS:g} ms"]
        return [f"seed 100 keys; offer {self.options.rate or 500:g} req/s for "
                f"{self.options.duration or 30:g} s with {self.options.users} connections, {mix}",
                f"check p99 < {P99_TARGET_MS:g} ms, throughput ≥ {THROUGHPUT_RATIO:g} x offered, "
                f"errors < {ERROR_RATE_TARGET:.1%}"]

    async def method(self, run: Run) -> None:
        addr, token = leader_addr(run), vault_token(run)
        if addr is None or token is None:
            raise Abort("no leader or no Vault token")
        await run.record("audit device enabled before the load", await _audit_on(run, addr))
        run.mutate("seed 100 KV keys and offer the read/write mix", addr)
        worker = LoadWorker()
        try:
            try:
                await worker.start(KV_LOAD, addr, token, self.options.users,
                                   **kv_load_options(run.inventory.vault))
            except RuntimeError as exc:
                raise Abort(f"starting the generator and seeding the key set: {exc}") from exc
            if self.options.find_max:
                await self._find_max(run, worker)
            else:
                await self._steady(run, worker)
        finally:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                worker.kill()  # interrupted: stop sending now, leave the seeded keys
            else:
                with contextlib.suppress(RuntimeError):
                    await worker.cleanup()
            await asyncio.shield(worker.close())
        await run.record("audit device still enabled after the load",
                         await _audit_on(run, leader_addr(run) or addr))

    async def _steady(self, run: Run, kv: LoadWorker) -> None:
        res = await self._load(run, kv, self.options.rate or 500.0, self.options.duration or 30.0)
        for name, value in res.metrics().items():
            run.metric(name, value, _unit(name))
        p99 = res.corrected.percentile_ms(99.0)
        await run.record(f"p99 below {P99_TARGET_MS:g} ms", outcome(
            p99 < P99_TARGET_MS, p99_ms=round(p99, 2),
            service_p99_ms=round(res.service.percentile_ms(99.0), 2)))
        await run.record(f"throughput at least {THROUGHPUT_RATIO:.0%} of offered", outcome(
            res.throughput_rps >= THROUGHPUT_RATIO * res.offered_rps,
            throughput_rps=round(res.throughput_rps, 1), offered_rps=res.offered_rps))
        await run.record(f"error rate below {ERROR_RATE_TARGET:.1%}", outcome(
            res.error_rate < ERROR_RATE_TARGET, errors=res.errors, unsent=res.unsent,
            requests=res.ok + res.errors))

    async def _find_max(self, run: Run, kv: LoadWorker) -> None:
        step_s = self.options.duration or FIND_MAX_STEP_S
        steps: list[dict[str, Any]] = []

        async def probe(rate: float) -> bool:
            res = await self._load(run, kv, rate, step_s)
            ok = meets_targets(res)
            steps.append({"offered_rps": round(rate), "throughput_rps": round(res.throughput_rps),
                          "p99_ms": round(res.corrected.percentile_ms(99.0), 2),
                          "error_rate": round(res.error_rate, 5), "meets": ok})
            run.step(f"{rate:.0f} req/s: p99 {steps[-1]['p99_ms']} ms", "done",
                     "meets the targets" if ok else "misses the targets")
            return ok

        good, bad = 0.0, None
        rate = self.options.rate or FIND_MAX_START_RPS
        while rate <= FIND_MAX_CAP_RPS:
            if not await probe(rate):
                bad = rate
                break
            good, rate = rate, rate * FIND_MAX_GROWTH
        if bad is not None and good > 0:
            for _ in range(FIND_MAX_BISECTIONS):
                mid = (good + bad) / 2
                if await probe(mid):
                    good = mid
                else:
                    bad = mid
        run.metric("max_rps", round(good), "req/s")
        if bad is not None:
            run.metric("first_failing_rps", round(bad), "req/s")
        await run.record(f"a rate meets p99 < {P99_TARGET_MS:g} ms with "
                         f"≥ {THROUGHPUT_RATIO:.0%} throughput and < {ERROR_RATE_TARGET:.1%} "
                         "errors", outcome(good > 0, max_rps=round(good), steps=steps,
                                           capped=bad is None))

    async def _load(self, run: Run, kv: LoadWorker, rate: float,
                    duration: float) -> LoadResult:
        spec = LoadSpec(rate=rate, duration_s=duration, users=self.options.users,
                        mix=self.options.mix)
        run.step(f"offer {rate:.0f} req/s for {duration:g} s")
        started = time.monotonic()

        def live(p: LoadProgress) -> None:
            run.session.bus.publish(LoadReport(
                run_id=run.run_id, scenario=self.id, elapsed_s=p.elapsed_s,
                offered_rps=p.offered_rps, throughput_rps=p.throughput_rps, errors=p.errors,
                count=p.completed, percentiles=p.corrected.ladder(),
                buckets=p.corrected.buckets()))

        res = await kv.load(spec, on_progress=live)
        requests.count(kv.addr, ok=True, n=res.ok)
        requests.count(kv.addr, ok=False, n=res.errors + res.unsent)
        run.metric("generator_cpu_percent", 100 * kv.last_cpu_s / res.elapsed_s, "%")
        run.session.bus.publish(LoadReport(
            run_id=run.run_id, scenario=self.id, final=True,
            elapsed_s=time.monotonic() - started, offered_rps=res.offered_rps,
            throughput_rps=res.throughput_rps, errors=res.errors + res.unsent,
            count=res.ok + res.errors, percentiles=res.corrected.ladder(),
            buckets=res.corrected.buckets()))
        return res


async def _audit_on(run: Run, addr: str) -> tuple[str, dict[str, Any]]:
    status, body = await vault_request(run, addr, "GET", "sys/audit")
    devices = sorted(k for k, v in body.get("data", body).items()
                     if isinstance(v, dict) and v.get("type"))
    return outcome(status == 200 and bool(devices), status=status, devices=devices)


def _unit(name: str) -> str:
    if name.endswith("_ms"):
        return "ms"
    if name.endswith("_rps"):
        return "req/s"
    return ""
