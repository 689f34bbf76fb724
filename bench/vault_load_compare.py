"""Vault load, side by side: opsconsole's generator vs Locust vs a bare aiohttp open loop.

Same lab cluster (audit on), same 90/10 KV mix, same rates; the tools alternate at each
rate (the order rotates run by run) so host speed drift hits them alike. For each tool:
the highest offered rate it sustains with p99 < 50 ms, throughput ≥ 95 % of offered and
errors < 0.1 %, and its own CPU (% of one core) at each rate.

    .venv/bin/python bench/vault_load_compare.py [--rates 250,500,750,1000,1250,1500]
        [--duration 6] [--runs 3] [--tools opsconsole,locust,bare]
        [--state-dir .opsconsole/bench-lab] [--out bench/results/vault_load.json]

p99 is what each tool reports: opsconsole and bare measure from the intended send time;
Locust measures from the actual send (closed loop), so its p99 hides queueing.
Runs against the benchmarks' own lab (``--state-dir``), never the shared one, unless asked.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from benchlib import (
    BENCH,
    BENCH_LAB,
    Figure,
    bench_lab,
    knee,
    rotate,
    vault_leader,
    write_result,
)

from opsconsole.load.openloop import LoadSpec
from opsconsole.load.worker import LoadWorker
from opsconsole.systems.vault.packs.vault_ha_load import KV_LOAD

P99_MS, MIN_RATIO, MAX_ERRORS = 50.0, 0.95, 0.001
LOCUST_USER_RPS = 10.0
LOCUST_RAMP_S = 2.0
CPU_RATES = (250, 500, 1000)  # issue 10 (1b): generator CPU at these offered rates


async def seed(addr: str, token: str, prefix: str, delete: bool = False) -> None:
    """Write (or delete) keys k0..k99 under ``prefix`` for Locust and the bare loop."""
    async with aiohttp.ClientSession(headers={"X-Vault-Token": token}) as http:
        for n in range(100):
            if delete:
                async with http.delete(f"{addr}/v1/secret/metadata/{prefix}/k{n}") as r:
                    await r.read()
                continue
            async with http.post(f"{addr}/v1/secret/data/{prefix}/k{n}",
                                 json={"data": {"v": "seed"}}) as r:
                r.raise_for_status()


class CpuWatch:
    """CPU seconds a child uses between ``mark`` and its last sample before exit."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.start: tuple[float, float] | None = None
        self.last: tuple[float, float] | None = None

    def sample(self, mark: bool = False) -> None:
        try:
            t = self.proc.cpu_times()
        except psutil.Error:
            return
        now = (time.monotonic(), t.user + t.system)
        if mark:
            self.start = now
        self.last = now

    @property
    def percent(self) -> float:
        if not self.start or not self.last or self.last[0] <= self.start[0]:
            return math.nan
        return 100 * (self.last[1] - self.start[1]) / (self.last[0] - self.start[0])


async def run_opsconsole(worker: LoadWorker, rate: float, duration: float) -> dict[str, Any]:
    res = await worker.load(LoadSpec(rate=rate, duration_s=duration, users=32))
    return {"throughput_rps": res.throughput_rps, "p99_ms": res.corrected.percentile_ms(99),
            "max_ms": res.corrected.max_ms(), "service_p99_ms": res.service.percentile_ms(99),
            "error_rate": res.error_rate, "cpu_percent": 100 * worker.last_cpu_s / res.elapsed_s}


async def run_locust(addr: str, token: str, prefix: str, rate: float, duration: float,
                     during: Callable[[], Awaitable[Any]] | None = None) -> dict[str, Any]:
    """One headless Locust process (FastHttpUser, users ramped over 2 s so load is not
    bursty). Stats are reset and CPU is measured from "All users spawned" on; ``during``
    (e.g. a fault) is started at that moment and awaited before returning."""
    users = max(10, math.ceil(rate / LOCUST_USER_RPS))
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "BENCH_VAULT_TOKEN": token, "BENCH_PREFIX": prefix,
               "BENCH_USER_RPS": f"{rate / users:.4f}"}
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "locust", "-f", str(BENCH / "locustfile.py"), "--headless",
            "--users", str(users), "--spawn-rate", str(users / LOCUST_RAMP_S), "--host", addr,
            "--run-time", f"{round(duration + LOCUST_RAMP_S)}s", "--reset-stats",
            "--only-summary", "--csv", f"{tmp}/l", "--loglevel", "INFO",
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        cpu = CpuWatch(proc.pid)
        spawned = asyncio.Event()
        side: asyncio.Task[Any] | None = None

        async def read_log() -> None:
            assert proc.stderr is not None
            while line := await proc.stderr.readline():
                if b"All users spawned" in line and not spawned.is_set():
                    cpu.sample(mark=True)
                    spawned.set()

        reader = asyncio.create_task(read_log())
        while proc.returncode is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(proc.wait(), 0.25)
            if spawned.is_set():
                cpu.sample()
                if during is not None and side is None:
                    side = asyncio.create_task(during())
        await reader
        if side is not None:
            await side
        with open(f"{tmp}/l_stats.csv") as fh:
            row = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    count = int(row["Request Count"])
    return {"throughput_rps": float(row["Requests/s"]), "p99_ms": float(row["99%"]),
            "max_ms": float(row["Max Response Time"]),
            "error_rate": int(row["Failure Count"]) / count if count else 1.0,
            "cpu_percent": cpu.percent}


async def run_bare(addr: str, token: str, prefix: str, rate: float,
                   duration: float) -> dict[str, Any]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(BENCH / "bare_openloop.py"), addr, prefix, str(rate), str(duration),
        env={**os.environ, "BENCH_VAULT_TOKEN": token}, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    data = json.loads(out)
    done = data["ok"] + data["errors"]
    return {"throughput_rps": data["ok"] / data["elapsed_s"], "p99_ms": data["p99_ms"],
            "error_rate": data["errors"] / done if done else 1.0,
            "cpu_percent": 100 * data["cpu_s"] / data["elapsed_s"]}


def meets(rate: float, m: dict[str, Any]) -> bool:
    return (m["p99_ms"] < P99_MS and m["throughput_rps"] >= MIN_RATIO * rate
            and m["error_rate"] < MAX_ERRORS)


def knees(rows: list[dict[str, Any]], tool: str) -> list[float]:
    runs = sorted({r["run"] for r in rows})
    return [knee([r for r in rows if r["tool"] == tool and r["run"] == k], "rate")
            for k in runs]


def cpu_runs(rows: list[dict[str, Any]], tool: str, rate: float) -> list[float]:
    return [r["cpu_percent"] for r in rows if r["tool"] == tool and r["rate"] == rate
            and not math.isnan(r["cpu_percent"])]


def summarise(rows: list[dict[str, Any]], tools: list[str]) -> dict[str, Any]:
    """Per tool: the knee of every run and its median; median CPU by rate."""
    out: dict[str, Any] = {}
    for tool in tools:
        maxima = knees(rows, tool)
        cpu = {str(int(rate)): round(statistics.median(v), 1)
               for rate in sorted({r["rate"] for r in rows})
               if (v := cpu_runs(rows, tool, rate))}
        out[tool] = {"max_rps_median": statistics.median(maxima) if maxima else None,
                     "max_rps_runs": maxima, "cpu_percent_median_by_rate": cpu}
    return out


def figures(rows: list[dict[str, Any]], tools: list[str], rates: list[float]) -> list[Figure]:
    figs: list[Figure] = []
    others = [t for t in tools if t != "opsconsole"]
    if not rows:
        return figs
    if "opsconsole" in tools and others:
        best = max(others, key=lambda t: statistics.median(knees(rows, t)))
        label = "best of " + ", ".join(
            f"{t} {statistics.median(knees(rows, t)):g}" for t in others) + f" → {best}"
        top = max(rates)
        figs.append(Figure(
            "Vault load: max sustained req/s (p99 < 50 ms, 90/10, audit on)", "req/s",
            knees(rows, "opsconsole"), knees(rows, best), label, "≥ 0.95x best",
            ("ratio>=", 0.95),
            note=f"knee over rates {','.join(f'{r:g}' for r in rates)}; "
                 f"{top:g} is the ceiling of the sweep"))
    if "opsconsole" in tools and "locust" in tools:
        for rate in CPU_RATES:
            if rate in rates:
                figs.append(Figure(
                    f"Vault load: generator CPU at {rate} req/s offered", "% of a core",
                    cpu_runs(rows, "opsconsole", rate), cpu_runs(rows, "locust", rate),
                    "Locust", "≤ 0.7x Locust", ("ratio<=", 0.7),
                    note="bare aiohttp loop: " + ", ".join(
                        f"{v:.1f}" for v in cpu_runs(rows, "bare", rate)) + " %"
                    if "bare" in tools else ""))
    return figs


@dataclass
class VaultTarget:
    """The bench lab's active Vault node with seeded keys and a started opsconsole worker."""

    lab: Any
    token: str
    addr: str
    prefix: str
    worker: LoadWorker
    interrupted: bool = False  # the worker got SIGINT too: no cleanup request to it


@contextlib.asynccontextmanager
async def vault_target(state_dir: str) -> AsyncIterator[VaultTarget]:
    """Set up what every Vault benchmark needs; always removes the keys and the worker."""
    lab = await bench_lab(state_dir)
    token = lab.root_token() or ""
    _, addr = await vault_leader(lab)
    prefix = f"opsconsole/bench-{uuid.uuid4().hex[:6]}"
    await seed(addr, token, prefix)
    worker = LoadWorker()
    await worker.start(KV_LOAD, addr, token, 32)
    target = VaultTarget(lab, token, addr, prefix, worker)
    try:
        yield target
    finally:
        if not target.interrupted:
            await worker.cleanup()
        await worker.close()
        _, leader = await vault_leader(lab)  # a stall may have moved it
        await seed(leader, token, prefix, delete=True)


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", default="250,500,750,1000,1250,1500")
    ap.add_argument("--duration", type=float, default=6.0)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--tools", default="opsconsole,locust,bare")
    ap.add_argument("--state-dir", default=str(BENCH_LAB))
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "vault_load.json")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    tools = args.tools.split(",")
    rows: list[dict[str, Any]] = []
    async with vault_target(args.state_dir) as target:
        worker, token, addr, prefix = target.worker, target.token, target.addr, target.prefix
        try:
            for run in range(args.runs):
                for i, rate in enumerate(rates):
                    for tool in rotate(tools, run + i):  # alternate who goes first
                        began = time.monotonic()
                        if tool == "opsconsole":
                            m = await run_opsconsole(worker, rate, args.duration)
                        elif tool == "locust":
                            m = await run_locust(addr, token, prefix, rate, args.duration)
                        else:
                            m = await run_bare(addr, token, prefix, rate, args.duration)
                        row = {"run": run, "tool": tool, "rate": rate, **m, "meets": meets(rate, m),
                               "wall_s": round(time.monotonic() - began, 2)}
                        rows.append(row)
                        print(f"run {run} {tool:10s} {rate:6.0f} req/s: "
                              f"{m['throughput_rps']:7.1f} req/s p99 {m['p99_ms']:7.1f} ms "
                              f"err {m['error_rate']:.4f} cpu {m['cpu_percent']:5.1f}% "
                              f"{'ok' if row['meets'] else 'MISS'} ({row['wall_s']:.1f} s)",
                              file=sys.stderr, flush=True)
        except asyncio.CancelledError:  # SIGINT (run_all's time budget): keep what was measured
            target.interrupted = True  # the worker child got the same SIGINT
    interrupted = target.interrupted
    if interrupted:  # only complete runs count
        per_run = len(rates) * len(tools)
        rows = [r for r in rows if sum(x["run"] == r["run"] for x in rows) == per_run]
    write_result(args.out, "vault_load",
                 {"rates": rates, "duration_s": args.duration, "runs": args.runs,
                  "tools": tools, "vault_addr": addr, "interrupted": interrupted},
                 figures(rows, tools, rates), {"summary": summarise(rows, tools), "rows": rows})


if __name__ == "__main__":
    asyncio.run(main())
