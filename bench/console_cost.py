"""Console cost on the lab: time to first frame, CPU (% of one core) and RSS.

Runs the real console in a real terminal (a private tmux server, 160x48) against
the running lab, with all panes live and relay traffic flowing through both
leaves. Targets (issue 3): first frame <= 1.5 s, CPU <= 25 %, RSS <= 200 MB.

    .venv/bin/python bench/console_cost.py [--seconds 60] [--runs 3] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from opsconsole.config import DEFAULT_CONFIG, load_config  # noqa: E402
from opsconsole.lab import Lab  # noqa: E402
from opsconsole.session import ConsoleSession  # noqa: E402
from opsconsole.tui.shots import relay_traffic  # noqa: E402


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
    cmd = shlex.join([sys.executable, "-m", "opsconsole.cli", "--state-dir", state_dir])
    started = time.monotonic()
    tmux.start(f"cd {shlex.quote(str(REPO))} && TERM=xterm-256color {cmd}")
    try:
        while "Cluster health" not in tmux.screen():
            if time.monotonic() - started > 30:
                raise RuntimeError("no frame within 30 s")
            time.sleep(0.01)
        return time.monotonic() - started
    finally:
        tmux.kill()


def steady_cost(state_dir: str, seconds: float, rate: float) -> dict[str, float]:
    tmux = Tmux()
    cmd = shlex.join([sys.executable, "-m", "opsconsole.cli", "--state-dir", state_dir])
    tmux.start(f"cd {shlex.quote(str(REPO))} && TERM=xterm-256color {cmd}")
    try:
        deadline = time.monotonic() + 30
        while "★" not in tmux.screen():  # every pane live: the Vault leader is known
            if time.monotonic() > deadline:
                raise RuntimeError("console never showed a Vault leader")
            time.sleep(0.1)
        proc = console_process(tmux.pane_pid())
        # Traffic runs in its own process so its CPU is not counted as the console's.
        traffic = subprocess.Popen([sys.executable, __file__, "--traffic", state_dir,
                                    str(seconds + 5), str(rate)])
        time.sleep(2)  # traffic ramp-up
        cpu0 = proc.cpu_times()
        t0 = time.monotonic()
        rss_max = 0
        while time.monotonic() - t0 < seconds:
            rss_max = max(rss_max, proc.memory_info().rss)
            time.sleep(1)
        cpu1 = proc.cpu_times()
        elapsed = time.monotonic() - t0
        traffic.wait(timeout=30)
        used = (cpu1.user - cpu0.user) + (cpu1.system - cpu0.system)
        return {"cpu_percent": 100 * used / elapsed, "rss_mb": rss_max / 2**20}
    finally:
        tmux.kill()


def traffic_main(state_dir: str, seconds: str, rate: str) -> None:
    session = ConsoleSession(load_config(DEFAULT_CONFIG), lab_state_dir=state_dir,
                             start_lab=False)
    asyncio.run(relay_traffic(session, float(seconds), float(rate)))


def main() -> None:
    if sys.argv[1:2] == ["--traffic"]:
        traffic_main(*sys.argv[2:5])
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rate", type=float, default=1000,
                        help="relay messages/s per direction per leaf while measuring")
    parser.add_argument("--state-dir", default=str(REPO / ".opsconsole" / "bench-lab"))
    args = parser.parse_args()
    lab = Lab(load_config(DEFAULT_CONFIG).lab, state_dir=args.state_dir)
    asyncio.run(lab.up())
    frames = [first_frame(args.state_dir) for _ in range(args.runs)]
    cost = steady_cost(args.state_dir, args.seconds, args.rate)
    result = {
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": f"{platform.machine()}, {psutil.cpu_count()} cores, "
                   f"{psutil.virtual_memory().total / 2**30:.0f} GiB",
        "first_frame_s_median": round(statistics.median(frames), 3),
        "first_frame_s_runs": [round(f, 3) for f in frames],
        "cpu_percent_of_one_core": round(cost["cpu_percent"], 1),
        "rss_mb_max": round(cost["rss_mb"], 1),
        "seconds": args.seconds,
        "relay_rate_per_direction_per_leaf": args.rate,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
