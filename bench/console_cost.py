"""Console cost on the lab: time to first frame, CPU (% of one core) and RSS.

Runs the real console in a real terminal (a private tmux server, 160x48) against the
bench lab, with all panes live while relay traffic flows through both leaves (central →
leaf and leaf → central for each leaf, ``--relay-rate`` msg/s in total, published by a
separate process so its CPU is not counted as the console's). That process reports the
rate it really published and the rate really delivered to its subscribers during the
measured window. Each run: one first frame (console launch → panes on screen, lab already
up), then one steady window. Goals (issue 10): first frame ≤ 1.5 s, CPU ≤ 25 %,
RSS ≤ 200 MB, while a 10k msg/s relay flows.

    .venv/bin/python bench/console_cost.py [--seconds 60] [--runs 3] [--relay-rate 10000]
        [--state-dir .opsconsole/bench-lab] [--out bench/results/console_cost.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
from benchlib import BENCH, BENCH_LAB, REPO, Figure, bench_lab, median, write_result

WARMUP_S = 2.0  # relay ramp-up before the measured window


class Tmux:
    def __init__(self) -> None:
        self.base = ["tmux", "-L", f"opsconsole-bench-{os.getpid()}-{uuid.uuid4().hex[:8]}"]

    def start(self, command: str) -> None:
        subprocess.run([*self.base, "new-session", "-d", "-s", "b", "-x", "160", "-y", "48",
                        command], check=True)

    def screen(self) -> str:
        return subprocess.run([*self.base, "capture-pane", "-p", "-t", "b"],
                              capture_output=True, text=True).stdout

    def pane_pid(self) -> int:
        out = subprocess.run([*self.base, "list-panes", "-t", "b", "-F", "#{pane_pid}"],
                             capture_output=True, text=True, check=True)
        return int(out.stdout.split()[0])

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def console_cmd(state_dir: str) -> str:
    cmd = shlex.join([sys.executable, "-m", "opsconsole.cli", "--state-dir", state_dir])
    return f"cd {shlex.quote(str(REPO))} && TERM=xterm-256color {cmd}"


def console_process(shell_pid: int) -> psutil.Process:
    """The python process running opsconsole under the tmux pane's shell."""
    shell = psutil.Process(shell_pid)
    for proc in [shell, *shell.children(recursive=True)]:
        if any("opsconsole.cli" in part for part in proc.cmdline()):
            return proc
    raise RuntimeError("console process not found")


def first_frame(state_dir: str) -> float:
    """Seconds from launch until the terminal shows the panes."""
    tmux = Tmux()
    started = time.monotonic()
    tmux.start(console_cmd(state_dir))
    try:
        while "Cluster health" not in tmux.screen():
            if time.monotonic() - started > 30:
                raise RuntimeError("no frame within 30 s")
            time.sleep(0.01)
        return time.monotonic() - started
    finally:
        tmux.kill()


def steady_cost(state_dir: str, seconds: float, rate: float) -> dict[str, Any]:
    tmux = Tmux()
    tmux.start(console_cmd(state_dir))
    traffic: subprocess.Popen[str] | None = None
    try:
        deadline = time.monotonic() + 30
        while "★" not in tmux.screen():  # every pane live: the Vault leader is known
            if time.monotonic() > deadline:
                raise RuntimeError("console never showed a Vault leader")
            time.sleep(0.1)
        proc = console_process(tmux.pane_pid())
        traffic = subprocess.Popen([sys.executable, __file__, "--traffic", state_dir,
                                    str(seconds), str(rate)], stdout=subprocess.PIPE, text=True)
        assert traffic.stdout is not None
        if traffic.stdout.readline().strip() != "publishing":
            raise RuntimeError("relay traffic did not start")
        time.sleep(WARMUP_S)
        cpu0 = proc.cpu_times()
        t0 = time.monotonic()
        rss_max = 0
        while time.monotonic() - t0 < seconds:
            rss_max = max(rss_max, proc.memory_info().rss)
            time.sleep(1)
        cpu1 = proc.cpu_times()
        elapsed = time.monotonic() - t0
        relay = json.loads(traffic.stdout.readline())
        traffic.wait(timeout=30)
        used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        return {"cpu_percent": 100 * used / elapsed, "rss_mb": rss_max / 2**20, **relay}
    finally:
        if traffic is not None and traffic.poll() is None:
            traffic.kill()
        tmux.kill()


# ------------------------------------------------------------------ relay traffic
async def relay(state_dir: str, seconds: float, rate: float) -> dict[str, float]:
    """Publish ``rate`` msg/s in total, spread over central → leaf and leaf → central for
    every leaf, for WARMUP_S + ``seconds`` (+1 s); count what was published and delivered
    in the window [WARMUP_S, WARMUP_S + seconds]."""
    import nats

    from opsconsole.config import DEFAULT_CONFIG, load_config
    from opsconsole.lab import Lab
    from opsconsole.lab.inventory import lab_inventory

    inv = lab_inventory(Lab(load_config(DEFAULT_CONFIG).lab, state_dir=state_dir),
                        load_config(DEFAULT_CONFIG))
    central = await nats.connect(inv.nats[0].nodes[0].client_url)
    leaves = [(leaf.user, await nats.connect(leaf.client_url)) for leaf in inv.leaves]
    delivered = 0

    async def count(_msg: Any) -> None:
        nonlocal delivered
        delivered += 1

    for user, nc in leaves:
        await nc.subscribe(f"OwnerSpace.{user}.forVault", cb=count)
    await central.subscribe("OwnerSpace.*.forApp", cb=count)
    streams = [(central, f"OwnerSpace.{u}.forVault") for u, _ in leaves]
    streams += [(nc, f"OwnerSpace.{u}.forApp") for u, nc in leaves]
    per_stream = rate / len(streams)
    payload = b"r" * 128
    loop = asyncio.get_running_loop()
    cpu0 = time.process_time()
    print("publishing", flush=True)
    t0 = loop.time()
    sent = 0
    marks: dict[str, tuple[float, int, int]] = {}
    while (elapsed := loop.time() - t0) < WARMUP_S + seconds + 1:
        due = int(elapsed * per_stream) - sent // len(streams)
        for _ in range(due):
            for nc, subject in streams:
                await nc.publish(subject, payload)
        sent += due * len(streams)
        if "start" not in marks and elapsed >= WARMUP_S:
            marks["start"] = (elapsed, sent, delivered)
        if "end" not in marks and elapsed >= WARMUP_S + seconds:
            marks["end"] = (elapsed, sent, delivered)
        await asyncio.sleep(0.002)
    cpu = time.process_time() - cpu0
    for nc in [central, *(nc for _, nc in leaves)]:
        await nc.drain()
    (ta, sa, da), (tb, sb, db) = marks["start"], marks["end"]
    return {"relay_asked_msgs": rate, "relay_published_msgs": (sb - sa) / (tb - ta),
            "relay_delivered_msgs": (db - da) / (tb - ta),
            "relay_publisher_cpu_percent": 100 * cpu / (loop.time() - t0)}


def main() -> None:
    if sys.argv[1:2] == ["--traffic"]:
        state_dir, seconds, rate = sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
        print(json.dumps(asyncio.run(relay(state_dir, seconds, rate))), flush=True)
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--relay-rate", type=float, default=10000,
                        help="relay messages/s in total (both directions, every leaf)")
    parser.add_argument("--state-dir", default=str(BENCH_LAB))
    parser.add_argument("--out", type=Path, default=BENCH / "results" / "console_cost.json")
    args = parser.parse_args()
    asyncio.run(bench_lab(args.state_dir))
    rows = []
    for run in range(args.runs):
        row = {"run": run, "first_frame_s": first_frame(args.state_dir),
               **steady_cost(args.state_dir, args.seconds, args.relay_rate)}
        rows.append(row)
        print(f"run {run}: first frame {row['first_frame_s']:.2f} s, cpu "
              f"{row['cpu_percent']:.1f} %, rss {row['rss_mb']:.0f} MB, relay delivered "
              f"{row['relay_delivered_msgs']:.0f} msg/s (published "
              f"{row['relay_published_msgs']:.0f}, publisher cpu "
              f"{row['relay_publisher_cpu_percent']:.0f} %)", file=sys.stderr, flush=True)

    def of(key: str) -> list[float]:
        return [r[key] for r in rows]

    relay_note = (f"relay delivered {median(of('relay_delivered_msgs')):.0f} msg/s "
                  f"(asked {args.relay_rate:g})")
    figs = [
        Figure("Console: time to first frame (launch → panes, lab up)", "s",
               of("first_frame_s"), [1.5], "goal", "≤ 1.5 s", ("value<=", 1.5)),
        Figure(f"Console: CPU over {args.seconds:g} s, all panes live, relay flowing",
               "% of a core", of("cpu_percent"), [25.0], "goal", "≤ 25 %",
               ("value<=", 25.0), note=relay_note),
        Figure(f"Console: RSS, max over {args.seconds:g} s", "MB", of("rss_mb"), [200.0],
               "goal", "≤ 200 MB", ("value<=", 200.0)),
        Figure("Console: relay flow during the CPU window (delivered msg/s)", "msg/s",
               of("relay_delivered_msgs"), [args.relay_rate] * len(rows), "asked",
               f"{args.relay_rate:g} msg/s (issue 10)", ("ratio>=", 0.95),
               note="published " + ", ".join(f"{v:.0f}" for v in of("relay_published_msgs"))
                    + " msg/s; the publisher used " + ", ".join(
                        f"{v:.0f}" for v in of("relay_publisher_cpu_percent"))
                    + " % of a core on the same 2 cores"),
    ]
    write_result(args.out, "console_cost",
                 {"seconds": args.seconds, "runs": args.runs, "relay_rate": args.relay_rate},
                 figs, rows)


if __name__ == "__main__":
    main()
