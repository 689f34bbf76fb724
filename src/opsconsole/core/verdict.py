"""One verdict vocabulary for checks, scenarios and runs, and the rules that combine them.

Every output (exit code, JUnit, JSON, Markdown, the boot transcript, the CLI summary and
the TUI) derives its verdict from these functions, so a run cannot be green in one place
and red in another.

- A check is ``pass``, ``warn`` (worth a look, not a failure), ``fail`` or ``unknown``
  (the target lacks the capability, or nothing could be observed; the evidence says why).
- A scenario is ``error`` (its code broke, or it could not run), ``fail`` (a check failed,
  or the method aborted), ``unknown`` (no check could decide: all unknown, or none) or
  ``pass``.
- A run is the worst of its scenarios; unknowns do not fail it unless ``strict``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .results import ScenarioResult


class Verdict(StrEnum):
    """The one vocabulary. Members are strings (``Verdict.PASS == "pass"``), so JSON,
    JUnit and journals carry the plain word."""

    PASS = "pass"
    WARN = "warn"
    FAIL = "fail"
    UNKNOWN = "unknown"
    ERROR = "error"


PASS, WARN, FAIL, UNKNOWN, ERROR = (Verdict.PASS, Verdict.WARN, Verdict.FAIL, Verdict.UNKNOWN,
                                    Verdict.ERROR)
CHECK_STATUSES = (PASS, WARN, FAIL, UNKNOWN)
SCENARIO_STATUSES = (PASS, FAIL, UNKNOWN, ERROR)
#: check statuses that decide something (unknown decides nothing)
DECIDING = frozenset({PASS, WARN, FAIL})
#: check statuses that do not fail a scenario
NOT_FAILING = frozenset({PASS, WARN, UNKNOWN})

EXIT_PASS, EXIT_FAIL, EXIT_COULD_NOT_RUN = 0, 1, 2


def scenario_status(check_statuses: Iterable[str]) -> str:
    """The verdict of a scenario that ran to its end, from its checks alone."""
    statuses = list(check_statuses)
    if FAIL in statuses:
        return FAIL
    if not any(s in DECIDING for s in statuses):
        return UNKNOWN
    return PASS


def counts(results: Iterable[ScenarioResult]) -> dict[str, dict[str, int]]:
    """How many scenarios and checks ended in each status (for every summary)."""
    results = list(results)
    scen = Counter(r.status for r in results)
    checks = Counter(c.status for r in results for c in r.checks)
    return {"scenarios": {s: scen.get(s, 0) for s in SCENARIO_STATUSES},
            "checks": {s: checks.get(s, 0) for s in CHECK_STATUSES}}


def run_verdict(results: Iterable[ScenarioResult], *, strict: bool = False,
                could_not_run: str | None = None) -> tuple[str, int]:
    """(status, exit code) of a whole run.

    Any failed scenario fails the run (1); else any error, or ``could_not_run`` (the lab
    did not come up), or no scenario at all, is "could not run" (2); else any unknown
    scenario makes the run unknown, which exits 0 unless ``strict`` — then any unknown,
    of a scenario or of a single check, fails it (1).
    """
    results = list(results)
    statuses = {r.status for r in results}
    if FAIL in statuses:
        return FAIL, EXIT_FAIL
    if could_not_run or not results or ERROR in statuses:
        return ERROR, EXIT_COULD_NOT_RUN
    unknown_checks = any(c.status == UNKNOWN for r in results for c in r.checks)
    if strict and (UNKNOWN in statuses or unknown_checks):
        return FAIL, EXIT_FAIL
    if UNKNOWN in statuses:
        return UNKNOWN, EXIT_PASS
    return PASS, EXIT_PASS


def not_passed(results: Iterable[ScenarioResult], *,
               strict: bool = False) -> list[tuple[str, str, str]]:
    """(status, scenario id, reason) of every scenario that did not pass — and, under
    ``strict``, of every unknown check inside a passing one — in run order."""
    out: list[tuple[str, str, str]] = []
    for r in results:
        if r.status != PASS:
            out.append((r.status, r.id, r.reason or r.status))
        elif strict:
            for c in r.checks:
                if c.status == UNKNOWN:
                    out.append((UNKNOWN, r.id, f"check {c.name!r} unknown: "
                                               f"{_why(c.evidence)}"))
    return out


def _why(evidence: Mapping[str, Any]) -> str:
    for key in ("reason", "error", "note"):
        if evidence.get(key):
            return str(evidence[key])
    return "no observation"


def summary_line(tally: Mapping[str, Mapping[str, int]]) -> str:
    """``3 scenarios: 2 pass, 1 unknown · checks: 40 pass, 2 unknown`` (zeros left out)."""
    scen, checks = tally["scenarios"], tally["checks"]

    def part(d: Mapping[str, int]) -> str:
        return ", ".join(f"{n} {s}" for s, n in d.items() if n) or "none"

    total = sum(scen.values())
    return (f"{total} scenario{'s' if total != 1 else ''}: {part(scen)} · "
            f"checks: {part(checks)}")
