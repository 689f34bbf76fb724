"""`make bench`: every benchmark of issue 10 in one session, then the table in PERFORMANCE.md.

Runs the scripts under bench/ one after another (each is runnable on its own), within a
total time budget: a step whose estimate no longer fits is skipped and reported as such,
and a step that overruns what is left is interrupted (SIGINT, then SIGKILL). All of them
use loopback only. The lab-using steps share one fresh bench lab (its own state dir,
never the shared lab at .opsconsole/lab), taken down at the end. Then the section between
the ``bench:start`` / ``bench:end`` markers of docs/PERFORMANCE.md is rewritten (inserted
before the first ``##`` heading the first time); the rest of the file is left alone.

    .venv/bin/python bench/run_all.py [--budget-min 20] [--quick] [--only vault_load,...]
        [--doc docs/PERFORMANCE.md | --no-doc] [--keep-lab]

``--quick``: tiny parameters (≈ 2 min), results in out/bench-quick/, and the generated
document goes to out/bench-quick/PERFORMANCE.md instead of docs/ — a smoke test of the
harness, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchlib import BENCH, BENCH_LAB, REPO, machine, now_utc

PY = ".venv/bin/python" if (REPO / ".venv/bin/python").exists() else sys.executable
START, END = "<!-- bench:start", "<!-- bench:end -->"
RESERVE_S = 30  # bench lab down + writing the document


@dataclass(frozen=True)
class Step:
    name: str
    script: str
    full: tuple[str, ...]
    quick: tuple[str, ...]
    estimate_s: float  # at full settings on the 2-core machine
    estimate_quick_s: float
    uses_lab: bool = True


# In execution order: lab timing first (fresh labs on a quiet machine), the killing
# benchmark (detection) last among those sharing the bench lab.
STEPS = [
    Step("lab_updown", "lab_updown.py", ("--runs", "3"), ("--runs", "1"), 50, 20, False),
    Step("vault_load", "vault_load_compare.py",
         ("--runs", "3", "--rates", "250,500,750,1000,1250,1500", "--duration", "6"),
         ("--runs", "1", "--rates", "250,500", "--duration", "2"), 450, 25),
    Step("nats_delivery", "nats_delivery.py",
         ("--runs", "3", "--rates", "1000,2000,3000,4000,5000,6000,10000,20000,40000",
          "--counts", "100,200,300,400", "--duration", "5"),
         ("--runs", "1", "--rates", "500", "--counts", "50", "--duration", "2"), 420, 30),
    Step("latency_truth", "latency_truth.py",
         ("--runs", "3", "--rate", "300", "--duration", "10", "--stall-ms", "200"),
         ("--runs", "1", "--rate", "100", "--duration", "3"), 95, 20),
    Step("console_cost", "console_cost.py",
         ("--runs", "3", "--seconds", "60", "--relay-rate", "10000"),
         ("--runs", "1", "--seconds", "3"), 220, 20),
    Step("detection", "detection.py", ("--runs", "3"), ("--runs", "1"), 45, 15),
    Step("probe_scaling", "probe_scaling.py", ("--runs", "5", "--counts", "10,50,200"),
         ("--runs", "1", "--counts", "5,20"), 35, 10, False),
]
# Rows in the document follow issue 10's numbering.
DOC_ORDER = ["vault_load", "nats_delivery", "latency_truth", "console_cost", "lab_updown",
             "detection", "probe_scaling"]


def run_step(step: Step, args: list[str], timeout: float, log: Path) -> tuple[str, float]:
    """Run one benchmark script; return (status, seconds). Its output (progress, then the
    JSON summary) goes to the terminal and to ``log``."""
    cmd = [PY, str(Path("bench") / step.script), *args]
    print(f"\n=== {step.name}: {' '.join(cmd)} (limit {timeout:.0f} s)", flush=True)
    t0 = time.monotonic()
    status = "ok"
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, start_new_session=True,
                                # SIGINT must interrupt even when make runs in the background
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

        def pump() -> None:
            assert proc.stdout is not None
            for line in proc.stdout:
                sys.stdout.write(line)
                sys.stdout.flush()
                out.write(line)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            status = "interrupted: over the time budget"
            os.killpg(proc.pid, signal.SIGINT)  # finally blocks run (SIGCONT, lab cleanup)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        reader.join(5)
    if status == "ok" and proc.returncode != 0:
        status = f"failed: exit {proc.returncode} (see {log.relative_to(REPO)})"
    return status, time.monotonic() - t0


def lab_cli(action: str, state_dir: Path) -> str:
    """`opsconsole lab ACTION` on the bench lab; "" on success, else why not."""
    cli = str(Path(PY).parent / "opsconsole")
    try:
        proc = subprocess.run([cli, "lab", action, "--state-dir", str(state_dir)], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                              timeout=180)
    except subprocess.TimeoutExpired:
        return f"`lab {action}` took over 180 s"
    return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or ["?"])[-1]


# ------------------------------------------------------------------ the document
def fmt(v: float | None) -> str:
    if v is None:
        return "—"
    if abs(v) >= 100:
        return f"{v:.0f}"
    if abs(v) >= 1:
        return f"{v:.3g}"
    return f"{v:.2g}"


def spread(runs: list[float]) -> str:
    vals = [v for v in runs if v is not None]
    if not vals:
        return "—"
    if len(vals) == 1:
        return f"{fmt(vals[0])} (1 run)"
    return f"{fmt(min(vals))} to {fmt(max(vals))} ({len(vals)} runs)"


def figure_row(fig: dict[str, Any], command: str) -> str:
    unit = fig["unit"]
    ops = f"{fmt(fig['opsconsole'])} {unit}" if fig["opsconsole"] is not None else "—"
    label = fig["reference_label"]
    ref = (f"{fmt(fig['reference'])} {unit} ({label})" if fig["reference"] is not None
           else label or "—")
    ratio = f"{fig['ratio']:.2f}x" if fig["ratio"] is not None else "—"
    met = {True: "yes", False: "**no**", None: "—"}[fig["met"]]
    spr = "opsconsole " + spread(fig["opsconsole_runs"])
    if label not in ("goal", "asked") and fig["reference_runs"]:
        spr += "; reference " + spread(fig["reference_runs"])
    return (f"| {fig['figure']} | {ops} | {ref} | {ratio} | {fig['goal'] or '—'} | {met} "
            f"| `{command}` | {spr} |")


def render(results: dict[str, dict[str, Any]], status: dict[str, str], info: dict[str, Any],
           commands: dict[str, str]) -> str:
    m = info["machine"]
    lines = [
        f"{START} generated by `make bench` (bench/run_all.py): edits inside are overwritten "
        "-->",
        f"## Side by side: `make bench` (issue 10) — {info['date']}",
        "",
        f"Machine: {m['arch']}, {m['cores']} cores ({m['cpu'] or 'cpu model unknown'}), "
        f"{m['memory_gib']} GiB; load average {m['loadavg_1m']} at the start, "
        f"{info.get('loadavg_end', '?')} at the end. "
        f"Commit {info['commit']}. Wall time {info['wall_min']:.1f} min "
        f"(budget {info['budget_min']:g} min), loopback only.",
        "",
        "Every figure is the median of its runs, all taken in this one session; where there "
        "is a second tool the tools alternate run by run (who goes first rotates). "
        "Spread = lowest to highest run. Where no other tool exists the reference is the "
        "goal (or the ground truth, as labelled) and the ratio is against it. Every run's "
        "numbers: `bench/results/<benchmark>.json`. This host's speed drifts up to 2x "
        "between sessions: compare figures only within this table.",
        "",
        "| figure | opsconsole | reference | ratio | goal | met? | command | spread |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    notes: list[str] = []
    for name in DOC_ORDER:
        doc = results.get(name)
        if doc is None:
            step = next(s for s in STEPS if s.name == name)
            why = status.get(name, "not run")
            lines.append(f"| {name} | not measured: {why} | — | — | — | — "
                         f"| `{commands.get(name, step.script)}` | — |")
            continue
        if status.get(name, "ok") != "ok":
            notes.append(f"- {name}: {status[name]}; figures below are from what completed.")
        for fig in doc["figures"]:
            lines.append(figure_row(fig, doc["command"]))
            if fig.get("note"):
                notes.append(f"- {fig['figure']}: {fig['note']}.")
    if notes:
        lines += ["", "Notes:", "", *notes]
    lines += ["", END]
    return "\n".join(lines) + "\n"


def rewrite(doc_path: Path, section: str, source: Path) -> None:
    text = source.read_text() if source.exists() else "# Performance\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + "\n" + tail
    else:  # first time: before the first "## " section, after the title and intro
        at = text.find("\n## ")
        at = len(text) if at < 0 else at + 1
        text = text[:at] + section + "\n" + text[at:]
    doc_path.parent.mkdir(parents=True, exist_ok=True)
    doc_path.write_text(text)


def commit() -> str:
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout
    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    return head + (" + uncommitted changes" if git("status", "--porcelain").strip() else "")


def render_only(out_dir: Path, doc_path: Path) -> None:
    """The table again from the result files (after re-running some steps by hand)."""
    info = json.loads((out_dir / "bench_all.json").read_text())
    results = {s.name: json.loads((out_dir / f"{s.name}.json").read_text())
               for s in STEPS if (out_dir / f"{s.name}.json").exists()}
    status = {s.name: info.get("status", {}).get(s.name, "ok") if s.name in results
              else "not run" for s in STEPS}
    status |= {name: "ok" for name in results}
    commands = {s.name: " ".join([PY, f"bench/{s.script}", *s.full]) for s in STEPS}
    rewrite(doc_path, render(results, status, info, commands), doc_path)
    print(f"wrote {doc_path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget-min", type=float, default=20)
    ap.add_argument("--quick", action="store_true", help="tiny parameters: a smoke test")
    ap.add_argument("--only", default="",
                    help="comma-separated step names (then the document is only written "
                         "with an explicit --doc)")
    ap.add_argument("--doc", type=Path, default=None)
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--keep-lab", action="store_true", help="leave the bench lab up")
    ap.add_argument("--render-only", action="store_true",
                    help="rewrite the document from bench/results/*.json, run nothing")
    ap.add_argument("--state-dir", type=Path, default=BENCH_LAB)
    args = ap.parse_args()
    out_dir = REPO / "out" / "bench-quick" if args.quick else BENCH / "results"
    log_dir = REPO / "out" / ("bench-quick" if args.quick else "bench")
    for d in (out_dir, log_dir):
        d.mkdir(parents=True, exist_ok=True)
    doc_path = args.doc or (out_dir / "PERFORMANCE.md" if args.quick
                            else REPO / "docs" / "PERFORMANCE.md")
    only = set(filter(None, args.only.split(",")))
    steps = [s for s in STEPS if not only or s.name in only]
    if args.render_only:
        render_only(out_dir, doc_path)
        return
    budget = args.budget_min * 60
    t_start = time.monotonic()
    info = {"date": now_utc(), "machine": machine(), "commit": commit(),
            "budget_min": args.budget_min}
    results: dict[str, dict[str, Any]] = {}
    status: dict[str, str] = {}
    commands: dict[str, str] = {}
    timings: dict[str, float] = {}
    lab_up = False
    lab_error = ""
    lab_cli("down", args.state_dir)  # a bench lab kept from before must not load the host
    try:
        for step in steps:
            left = budget - (time.monotonic() - t_start) - RESERVE_S
            estimate = step.estimate_quick_s if args.quick else step.estimate_s
            if step.uses_lab and not lab_up:
                estimate += 20
            extra = (["--out", os.path.relpath(out_dir / f"{step.name}.json", REPO)]
                     if args.quick else [])
            if step.uses_lab and args.state_dir != BENCH_LAB:
                extra += ["--state-dir", os.path.relpath(args.state_dir, REPO)]
            step_args = [*(step.quick if args.quick else step.full), *extra]
            commands[step.name] = " ".join([PY, f"bench/{step.script}", *step_args])
            if step.uses_lab and lab_error:
                status[step.name] = f"not run: the bench lab did not come up ({lab_error})"
                continue
            if estimate > left:
                status[step.name] = (f"skipped: needs ≈ {estimate:.0f} s, {max(left, 0):.0f} s "
                                     "left of the time budget")
                print(f"\n=== {step.name}: {status[step.name]}", flush=True)
                continue
            if step.uses_lab and not lab_up:
                t0 = time.monotonic()
                print(f"\n=== fresh bench lab at {args.state_dir}", flush=True)
                lab_error = lab_cli("up", args.state_dir)
                lab_up = True  # (even half up: taken down at the end)
                if lab_error:
                    status[step.name] = f"not run: the bench lab did not come up ({lab_error})"
                    print(f"=== {status[step.name]}", flush=True)
                    continue
                left -= time.monotonic() - t0
            result_file = out_dir / f"{step.name}.json"
            before = result_file.stat().st_mtime if result_file.exists() else None
            status[step.name], timings[step.name] = run_step(
                step, step_args, max(left, 10), log_dir / f"{step.name}.log")
            if result_file.exists() and result_file.stat().st_mtime != before:
                results[step.name] = json.loads(result_file.read_text())
    finally:
        if lab_up and not args.keep_lab:
            lab_cli("down", args.state_dir)
    info["wall_min"] = (time.monotonic() - t_start) / 60
    info["loadavg_end"] = round(os.getloadavg()[0], 2)
    (out_dir / "bench_all.json").write_text(json.dumps(
        {**info, "status": status, "step_seconds": timings}, indent=1) + "\n")
    section = render(results, status, info, commands)
    print("\n" + section)
    if not args.no_doc and (not only or args.doc):  # a partial run never replaces the table
        rewrite(doc_path, section, REPO / "docs" / "PERFORMANCE.md" if args.quick else doc_path)
        print(f"wrote {doc_path.relative_to(REPO) if doc_path.is_relative_to(REPO) else doc_path}")
    print("step seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()))
    sys.exit(0 if all(s == "ok" for s in status.values()) else 1)


if __name__ == "__main__":
    main()
