"""`opsconsole history [DIR ...] [--last N] [--tolerance PCT] [--json]`: past runs from their
signed transcripts, and the newest run's regressions (see :mod:`opsconsole.report.history`).

Exit 0: no regression; 1: a regression flagged; 2: bad input (a directory that does not
exist, no transcript found). A transcript that does not verify is reported and left out.
``cli.build_parser`` registers it with ``add_history_parser(sub)``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .argtypes import positive
from .errors import UserError

DEFAULT_DIR = Path(".opsconsole") / "reports"  # where `opsconsole run` writes by default


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be 0 or more")
    return value


def add_history_parser(sub: Any) -> None:
    """Register the ``history`` sub-command on an ``add_subparsers()`` object."""
    hist = sub.add_parser(
        "history", help="past runs from their signed transcripts; exit 1 on a regression",
        description="List past runs (date, scenarios, verdict, metrics) from the signed "
                    "transcripts under DIR, and flag a REGRESSION when a metric of the "
                    "newest run is worse than the median of the last N runs by more than "
                    "the tolerance. Lower is better for *_seconds, *_s, *_ms, *_usd, "
                    "*error_rate, *orphans; higher for *_rps, *success_rate; other "
                    "metrics are not judged.")
    hist.add_argument("dirs", nargs="*", type=Path, metavar="DIR",
                      help=f"report dirs or a dir of them (default {DEFAULT_DIR})")
    hist.add_argument("--last", type=positive(int), default=5, metavar="N",
                      help="the median is over the last N earlier runs (default 5)")
    hist.add_argument("--tolerance", type=_non_negative, default=10.0, metavar="PCT",
                      help="worse than the median by more than PCT %% is a regression "
                           "(default 10)")
    hist.add_argument("--json", action="store_true",
                      help="print the runs, the rejected transcripts and the regressions "
                           "as JSON")
    hist.set_defaults(func=cmd_history)


def cmd_history(args: argparse.Namespace) -> int:
    from .report.history import load_history, regressions, transcripts

    dirs: list[Path] = args.dirs or [DEFAULT_DIR]
    for d in dirs:
        if not d.exists():
            raise UserError(f"history: DIR {d}: no such file or directory", exit_code=2)
    paths = transcripts(dirs)
    if not paths:
        raise UserError("history: no transcript.json under " + ", ".join(map(str, dirs)),
                        exit_code=2)
    runs, rejected = load_history(paths)
    found = regressions(runs, args.last, args.tolerance / 100)
    if args.json:
        print(json.dumps({"runs": [r.as_json() for r in runs], "rejected": rejected,
                          "last": args.last, "tolerance_pct": args.tolerance,
                          "judged": runs[-1].run_id if runs else None,
                          "regressions": [g.as_json() for g in found]}, indent=2))
        return 1 if found else 0
    for r in runs:
        print(f"{r.started_at_iso or '?':<20} {r.run_id:<12} {r.status.upper():<7} "
              + ", ".join(r.scenarios))
        for name, value in sorted(r.metrics.items()):
            print(f"    {name} = {value:g}")
    for bad in rejected:
        print(f"opsconsole: history: left out: {bad['reason']}", file=sys.stderr)
    for g in found:
        print(g.line())
    if runs and not found:
        print(f"no regression in run {runs[-1].run_id} (median of the last {args.last} runs, "
              f"tolerance {args.tolerance:g} %)")
    return 1 if found else 0
