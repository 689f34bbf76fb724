"""Lab: `opsconsole lab up` from nothing to every node healthy, `lab down` to nothing left.

Each run uses a fresh temporary state dir (never the shared lab): the CLI's wall time for
`lab up --json` (its status must say healthy), then for `lab down`, then an independent
check that nothing is left — no process carrying the lab's marker, no port of the lab
listening, no network namespace of the lab. Goals (issue 10): ≤ 10 s and ≤ 3 s.

    .venv/bin/python bench/lab_updown.py [--runs 3] [--out bench/results/lab_updown.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import BENCH, Figure, write_result

from opsconsole.lab import Lab
from opsconsole.lab.ports import listening_ports
from opsconsole.lab.procs import find_marked

CLI = str(Path(sys.executable).parent / "opsconsole")


def timed(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    t0 = time.monotonic()
    proc = subprocess.run([CLI, "lab", *args], capture_output=True, text=True, timeout=120)
    return time.monotonic() - t0, proc


def leftovers(lab: Lab, ports: list[int], namespaces: list[str]) -> list[str]:
    left = [f"process {p.pid}" for p in find_marked(lab.marker)]
    left += [f"port {p}" for p in sorted(set(ports) & listening_ports())]
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    left += [f"netns {ns}" for ns in namespaces if ns in netns.split()]
    return left


def one_run() -> dict[str, Any]:
    state_dir = tempfile.mkdtemp(prefix="opsconsole-labbench-")
    lab = Lab(state_dir=state_dir)
    try:
        up_s, up = timed("up", "--json", "--state-dir", state_dir)
        status = json.loads(up.stdout) if up.returncode == 0 else {}
        state = lab.dir.load()
        ports = [p for node in state.ports.values() for p in node.values()]
        namespaces = list((state.netns or {}).get("namespaces", {}).values())
        down_s, down = timed("down", "--state-dir", state_dir)
        left = leftovers(lab, ports, namespaces)
        return {"up_s": up_s, "up_rc": up.returncode, "healthy": bool(status.get("healthy")),
                "up_seconds_recorded": status.get("up_seconds"), "down_s": down_s,
                "down_rc": down.returncode, "left": left,
                "error": (up.stderr or down.stderr).strip()[-300:]}
    finally:
        if lab.dir.load().phase != "down":
            subprocess.run([CLI, "lab", "down", "--state-dir", state_dir], capture_output=True)
        shutil.rmtree(state_dir, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "lab_updown.json")
    args = ap.parse_args()
    rows = []
    for run in range(args.runs):
        row = {"run": run, **one_run()}
        rows.append(row)
        print(f"run {run}: up {row['up_s']:.2f} s (healthy={row['healthy']}), down "
              f"{row['down_s']:.2f} s, left: {row['left'] or 'nothing'}",
              file=sys.stderr, flush=True)
    good_up = [r["up_s"] for r in rows if r["up_rc"] == 0 and r["healthy"]]
    good_down = [r["down_s"] for r in rows if r["down_rc"] == 0 and not r["left"]]
    bad_up, bad_down = len(rows) - len(good_up), len(rows) - len(good_down)
    figs = [
        Figure("Lab: `lab up` from nothing to every node healthy", "s", good_up, [10.0],
               "goal", "≤ 10 s", ("value<=", 10.0),
               note="CLI wall time; 3 NATS + 2 leaves + 3 OpenBao voters + moto + proxy + SUT"
                    + (f"; {bad_up} run(s) not healthy" if bad_up else "")),
        Figure("Lab: `lab down` to no process, port or namespace left", "s", good_down, [3.0],
               "goal", "≤ 3 s", ("value<=", 3.0),
               note="checked after each run: no marked process, no lab port, no lab netns"
                    + (f"; {bad_down} run(s) left something" if bad_down else "")),
    ]
    for fig, bad in zip(figs, (bad_up, bad_down), strict=True):
        if bad:  # a run that failed is a miss, whatever the others' median says
            fig.met = False
    write_result(args.out, "lab_updown", {"runs": args.runs}, figs, rows)


if __name__ == "__main__":
    main()
