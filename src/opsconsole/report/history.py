"""Past runs from their signed transcripts, and performance regressions among them (seed
001 "performance regression detection"; `opsconsole history`).

Every ``transcript.json`` under the given directories is verified first
(:func:`..transcript.verify_transcript`); one that does not verify is reported and left
out. A metric is ``<scenario id>/<metric name>`` (the same name from two scenarios measures
different things). The newest run is held against the median of the same metric over the
``last`` runs before it that have it: a regression is a value worse than that median by more
than ``tolerance`` (a fraction of the median). Worse is the metric's direction, from its
name (:func:`direction`); a metric without one is listed, never judged.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .transcript import verify_transcript

#: name suffixes (and whole names) whose lower value is better / whose higher value is
LOWER_IS_BETTER = ("_seconds", "_s", "_ms", "_usd", "error_rate", "orphans")
HIGHER_IS_BETTER = ("_rps", "success_rate")


def direction(metric: str) -> str | None:
    """``"lower"`` or ``"higher"`` (is better) for a metric name, None when neither rule
    applies: lower for ``*_seconds``, ``*_s``, ``*_ms``, ``*_usd``, ``*error_rate``,
    ``*orphans``; higher for ``*_rps`` and ``*success_rate``."""
    if metric.endswith(HIGHER_IS_BETTER):
        return "higher"
    if metric.endswith(LOWER_IS_BETTER):
        return "lower"
    return None


@dataclass
class RunEntry:
    """One verified run: when, what ran, its verdict and its metrics."""

    path: Path
    run_id: str
    started_at: float
    started_at_iso: str
    status: str
    scenarios: list[str]
    metrics: dict[str, float] = field(default_factory=dict)  # "<scenario>/<metric>" → value

    def as_json(self) -> dict[str, Any]:
        return {"transcript": str(self.path), "run_id": self.run_id,
                "started_at": self.started_at_iso, "status": self.status,
                "scenarios": self.scenarios, "metrics": self.metrics}


@dataclass
class Regression:
    metric: str
    value: float
    median: float
    runs: int  # how many earlier runs the median is over
    tolerance_pct: float
    better: str  # "lower" | "higher"

    @property
    def worse_pct(self) -> float | None:
        """How much worse than the median, in % of it (None: the median is 0)."""
        if self.median == 0:
            return None
        sign = 1 if self.better == "lower" else -1
        return round(sign * (self.value - self.median) / abs(self.median) * 100, 2)

    def line(self) -> str:
        worse = "∞" if self.worse_pct is None else f"{self.worse_pct:g}"
        return (f"REGRESSION {self.metric} = {self.value:g}: {worse} % worse than the median "
                f"{self.median:g} of the last {self.runs} runs ({self.better} is better; "
                f"tolerance {self.tolerance_pct:g} %)")

    def as_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "value": self.value, "median": self.median,
                "runs": self.runs, "tolerance_pct": self.tolerance_pct,
                "better": self.better, "worse_pct": self.worse_pct}


def transcripts(dirs: Iterable[Path]) -> list[Path]:
    """``transcript.json`` files: a file given as is, a directory's own and those of its
    sub-directories (a report dir, or the dir of report dirs)."""
    found: list[Path] = []
    for d in dirs:
        if d.is_file():
            found.append(d)
            continue
        if (d / "transcript.json").is_file():
            found.append(d / "transcript.json")
        found += sorted(p for p in d.glob("*/transcript.json") if p.is_file())
    return list(dict.fromkeys(found))


def load_run(path: Path) -> RunEntry:
    """A verified transcript as a run (call :func:`verify_transcript` first)."""
    doc = json.loads(path.read_bytes())
    metrics: dict[str, float] = {}
    for sc in doc.get("scenarios") or []:
        for name, value in (sc.get("metrics") or {}).items():
            if isinstance(value, int | float) and not isinstance(value, bool):
                metrics[f"{sc.get('id')}/{name}"] = float(value)
    return RunEntry(path, str(doc.get("run_id", "")), float(doc.get("started_at") or 0.0),
                    str(doc.get("started_at_iso", "")), str(doc.get("status", "")),
                    [str(sc.get("id")) for sc in doc.get("scenarios") or []], metrics)


def load_history(paths: Sequence[Path]) -> tuple[list[RunEntry], list[dict[str, str]]]:
    """The runs that verify, oldest first, and those that do not (path, why)."""
    runs, rejected = [], []
    for path in paths:
        ok, message = verify_transcript(path)
        if not ok:
            rejected.append({"transcript": str(path), "reason": message})
            continue
        runs.append(load_run(path))
    runs.sort(key=lambda r: (r.started_at, r.run_id))
    return runs, rejected


def regressions(runs: Sequence[RunEntry], last: int, tolerance: float) -> list[Regression]:
    """The newest run's metrics worse than the median of the ``last`` runs before it (that
    have the metric) by more than ``tolerance`` (0.1 = 10 % of the median). A median of 0
    with a lower-is-better metric: any value above it is a regression."""
    if len(runs) < 2:
        return []
    newest, earlier = runs[-1], runs[:-1]
    found = []
    for metric, value in sorted(newest.metrics.items()):
        better = direction(metric.rsplit("/", 1)[-1])
        if better is None:
            continue
        past = [r.metrics[metric] for r in earlier if metric in r.metrics][-last:]
        if not past:
            continue
        median = statistics.median(past)
        limit = abs(median) * tolerance
        worse = value > median + limit if better == "lower" else value < median - limit
        if worse:
            found.append(Regression(metric, value, median, len(past), round(tolerance * 100, 6),
                                    better))
    return found
