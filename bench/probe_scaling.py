"""Probe scaling: one vault-instance probe cycle with 10, 50, 200 instances.

A private moto server (its own port, not the lab's) gets N EC2 instances tagged like the
lab's (``role=vault-instance``, ``owner``, ``env``, ``Name``); then, alternating run by
run, one ``InstanceProbe.sample()`` cycle (the console's probe: paginated
``describe_instances`` by tag, one ``InstanceSampled`` event per instance) and, as the
reference, the bare aioboto3 calls alone (same filter and pagination, no events).
Without a provisioning service, so the probe's per-instance health call is not made.
Goal (issue 10): ≤ 1 s at 50. The growth is the least-squares slope (ms per instance).

    .venv/bin/python bench/probe_scaling.py [--counts 10,50,200] [--runs 5]
        [--profile] [--out bench/results/probe_scaling.json]

``--profile`` (needs pyinstrument) writes a profile of one cycle at the largest count
next to ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
from benchlib import BENCH, Figure, rotate, write_result

from opsconsole.lab.binaries import moto_server
from opsconsole.lab.ports import free_ports
from opsconsole.systems.aws.config import AwsTarget
from opsconsole.systems.vault_instances.probe import InstanceProbe

REGION = "us-east-1"
CREDS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}  # moto only
FILTER = [{"Name": "tag:role", "Values": ["vault-instance"]}]


async def start_moto() -> tuple[subprocess.Popen[bytes], str]:
    port = free_ports(1)[0]
    proc = subprocess.Popen([*moto_server(), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(f"{url}/moto-api/") as r:
                    if r.status == 200:
                        return proc, url
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("moto server did not start")


async def add_instances(ec2: Any, start: int, stop: int) -> None:
    images = await ec2.describe_images(Filters=[{"Name": "architecture", "Values": ["arm64"]}])
    ami = images["Images"][0]["ImageId"]
    for i in range(start, stop):
        tags = [{"Key": "role", "Value": "vault-instance"}, {"Key": "owner", "Value": f"u{i}"},
                {"Key": "env", "Value": "lab"}, {"Key": "Name", "Value": f"vault-u{i}"}]
        await ec2.run_instances(ImageId=ami, InstanceType="t4g.nano", MinCount=1, MaxCount=1,
                                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])


async def bare_cycle(ec2: Any) -> int:
    n = 0
    async for page in ec2.get_paginator("describe_instances").paginate(Filters=FILTER):
        n += sum(len(r["Instances"]) for r in page["Reservations"])
    return n


async def timed(coro: Any) -> tuple[float, int]:
    t0 = time.perf_counter()
    result = await coro
    return time.perf_counter() - t0, result if isinstance(result, int) else len(result)


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    var = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / var if var else 0.0


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--counts", default="10,50,200")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "probe_scaling.json")
    args = ap.parse_args()
    counts = sorted(int(c) for c in args.counts.split(","))
    proc, url = await start_moto()
    rows: list[dict[str, Any]] = []
    probe = InstanceProbe(AwsTarget(region=REGION, endpoint_url=url), CREDS)
    try:
        await probe.open()
        session = aioboto3.Session(region_name=REGION, **CREDS)
        async with session.client("ec2", endpoint_url=url) as ec2:
            have = 0
            for count in counts:
                await add_instances(ec2, have, count)
                have = count
                await probe.sample(), await bare_cycle(ec2)  # warm both paths
                for run in range(args.runs):
                    for tool in rotate(["opsconsole", "bare"], run):
                        secs, seen = await timed(probe.sample() if tool == "opsconsole"
                                                 else bare_cycle(ec2))
                        rows.append({"count": count, "run": run, "tool": tool,
                                     "seconds": secs, "seen": seen})
                print(f"{count} instances: " + "; ".join(
                    f"{tool} " + ", ".join(f"{r['seconds'] * 1000:.0f}" for r in rows
                                           if r["count"] == count and r["tool"] == tool)
                    + " ms" for tool in ("opsconsole", "bare")), file=sys.stderr, flush=True)
            if args.profile:
                await profile(probe, args.out.with_suffix(".profile.txt"))
    finally:
        await probe.close()
        proc.terminate()
        proc.wait(10)

    def runs(tool: str, count: int) -> list[float]:
        return [r["seconds"] for r in rows if r["tool"] == tool and r["count"] == count]

    figs = []
    for count in counts:
        goal = count == 50
        figs.append(Figure(f"Probe scaling: one instance-probe cycle, {count} instances", "s",
                           runs("opsconsole", count), runs("bare", count),
                           "bare aioboto3 describe_instances", "≤ 1 s" if goal else "",
                           ("value<=", 1.0) if goal else None,
                           note="moto server, paginated by tag; no provisioner health call"))
    # one slope per run index (run k at every count), so the growth has a spread too
    ms = {t: [slope([(c, 1000 * runs(t, c)[k]) for c in counts]) for k in range(args.runs)]
          for t in ("opsconsole", "bare")}
    figs.append(Figure("Probe scaling: growth (least-squares slope over the counts)",
                       "ms/instance", ms["opsconsole"], ms["bare"],
                       "bare aioboto3 describe_instances", "linear; ≤ 20 ms/instance",
                       ("value<=", 20.0),
                       note="20 ms/instance keeps 50 instances under 1 s"))
    write_result(args.out, "probe_scaling", {"counts": counts, "runs": args.runs}, figs, rows)


async def profile(probe: InstanceProbe, out: Path) -> None:
    """One probe cycle under pyinstrument (if installed), as text."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        print("--profile: pyinstrument is not installed", file=sys.stderr)
        return
    profiler = Profiler(async_mode="enabled", interval=0.0005)
    profiler.start()
    await probe.sample()
    profiler.stop()
    out.write_text(profiler.output_text(show_all=False))
    print(f"profile written to {out}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main())
