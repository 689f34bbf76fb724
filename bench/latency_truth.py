"""Latency truth: a real 200 ms stall in the middle of a constant-rate run.

At the chosen rate against the bench lab's active Vault node, the active OpenBao process
is frozen for ``--stall-ms`` (SIGSTOP, then SIGCONT) halfway through each run. Once with
opsconsole's generator (``LoadWorker``: open loop, latency from each request's intended
send time) and once with Locust (closed loop: a stalled user simply sends later), each run
with its own stall; the order alternates run by run.

For a stall of S seconds in a run of D seconds at a constant rate, the requests due during
the stall wait S - (their offset into it); so a fraction (S - x)/D of all requests is
late by more than x, and the true p99 is ≈ S - D/100 (≈ 100 ms for 200 ms in 10 s) plus
the service time. A tool whose p99 stays near the service time did not see the stall.

    .venv/bin/python bench/latency_truth.py [--rate 300] [--duration 10] [--stall-ms 200]
        [--runs 3] [--state-dir .opsconsole/bench-lab] [--out bench/results/latency_truth.json]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from benchlib import BENCH, BENCH_LAB, Figure, rotate, vault_leader, write_result
from vault_load_compare import run_locust, vault_target

from opsconsole.load.openloop import LoadSpec
from opsconsole.load.worker import LoadWorker

TOOLS = ["opsconsole", "locust"]


async def stall(pid: int, seconds: float, after: float) -> float:
    """Freeze ``pid`` for ``seconds`` starting ``after`` seconds from now; return the
    measured freeze."""
    await asyncio.sleep(after)
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        await asyncio.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)
    return time.monotonic() - t0


async def one_run(tool: str, lab: Any, worker: LoadWorker, token: str, prefix: str,
                  rate: float, duration: float, stall_s: float) -> dict[str, Any]:
    name, addr = await vault_leader(lab)
    pid = lab.dir.load().procs[name].pid
    frozen: list[float] = []

    async def fault() -> None:
        frozen.append(await stall(pid, stall_s, duration / 2))

    if tool == "opsconsole":
        if worker.addr != addr:  # the leader moved: follow it
            await worker.cleanup()
            await worker.close()
            await worker.start(addr, token, 32)
        side = asyncio.create_task(fault())
        res = await worker.load(LoadSpec(rate=rate, duration_s=duration, users=32))
        await side
        m = {"p99_ms": res.corrected.percentile_ms(99), "max_ms": res.corrected.max_ms(),
             "service_p99_ms": res.service.percentile_ms(99),
             "throughput_rps": res.throughput_rps, "error_rate": res.error_rate}
    else:
        m = await run_locust(addr, token, prefix, rate, duration, during=fault)
    after, _ = await vault_leader(lab)
    return {"tool": tool, "leader": name, "leader_after": after,
            "stall_ms": 1000 * frozen[0] if frozen else None, **m}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=300)
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--stall-ms", type=float, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--state-dir", default=str(BENCH_LAB))
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "latency_truth.json")
    args = ap.parse_args()
    stall_s = args.stall_ms / 1000
    rows: list[dict[str, Any]] = []
    async with vault_target(args.state_dir) as t:
        for run in range(args.runs):
            for tool in rotate(TOOLS, run):
                row = {"run": run, **await one_run(tool, t.lab, t.worker, t.token, t.prefix,
                                                   args.rate, args.duration, stall_s)}
                rows.append(row)
                print(f"run {run} {tool:10s} p99 {row['p99_ms']:7.1f} ms max "
                      f"{row['max_ms']:7.1f} ms stall {row['stall_ms'] or 0:.0f} ms "
                      f"leader {row['leader']}→{row['leader_after']}",
                      file=sys.stderr, flush=True)
                await asyncio.sleep(1)  # let the cluster settle before the next stall

    def of(tool: str, key: str) -> list[float]:
        return [r[key] for r in rows if r["tool"] == tool]

    expected_ms = 1000 * (stall_s - args.duration / 100)
    moved = sum(r["leader"] != r["leader_after"] for r in rows)
    shape = f"{args.rate:g} req/s, {args.duration:g} s, {args.stall_ms:g} ms SIGSTOP of the leader"
    figs = [
        Figure(f"Latency truth: p99 with a {args.stall_ms:g} ms stall ({shape})", "ms",
               of("opsconsole", "p99_ms"), of("locust", "p99_ms"), "Locust (same run shape)",
               f"shows the stall: ≥ 0.8x the true p99 ≈ {expected_ms:.0f} ms",
               ("value>=", 0.8 * expected_ms),
               note="opsconsole service-time p99 (uncorrected) in the same runs: "
                    + ", ".join(f"{v:.1f}" for v in of("opsconsole", "service_p99_ms"))
                    + f" ms; leader changed after {moved} of {len(rows)} stalls"),
        Figure(f"Latency truth: max with a {args.stall_ms:g} ms stall", "ms",
               of("opsconsole", "max_ms"), of("locust", "max_ms"), "Locust",
               f"≥ 0.9x the stall ({args.stall_ms:g} ms)", ("value>=", 0.9 * args.stall_ms),
               note="measured freezes: " + ", ".join(
                   f"{r['stall_ms']:.0f}" if r["stall_ms"] else "none (not injected)"
                   for r in rows) + " ms"),
    ]
    write_result(args.out, "latency_truth",
                 {"rate": args.rate, "duration_s": args.duration, "stall_ms": args.stall_ms,
                  "runs": args.runs, "expected_true_p99_ms": expected_ms}, figs, rows)


if __name__ == "__main__":
    asyncio.run(main())
