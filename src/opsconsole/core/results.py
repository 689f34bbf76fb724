"""The one check-outcome type, and the scenario result that holds them.

The engine records :class:`CheckRecord` s into a :class:`ScenarioResult`; the runner, the
verdict rules, the CLI, the console, smoke, the demo and the report writers all read these
objects. They become JSON only at the edges (the signed transcript, JUnit, ``--json``)
with :meth:`ScenarioResult.as_json`, and are read back with :meth:`ScenarioResult.from_json`
(a transcript turned into Markdown).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .verdict import ERROR, PASS, UNKNOWN, Verdict

Evidence = dict[str, Any]


@dataclass
class CheckRecord:
    """One check's outcome: its verdict, what it observed, when in the scenario, how long."""

    name: str
    phase: str  # steady-state | method | rollback | verify
    status: Verdict
    evidence: Evidence
    duration_s: float

    def __post_init__(self) -> None:
        self.status = Verdict(self.status)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "phase": self.phase, "status": str(self.status),
                "evidence": self.evidence, "duration_s": round(self.duration_s, 3)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CheckRecord:
        return cls(data["name"], data["phase"], Verdict(data["status"]),
                   dict(data.get("evidence") or {}), float(data.get("duration_s", 0.0)))


@dataclass
class ScenarioResult:
    id: str
    title: str
    status: Verdict = PASS  # pass | fail | unknown | error (opsconsole.core.verdict)
    reason: str = ""
    started_at: float = 0.0
    duration_s: float = 0.0
    checks: list[CheckRecord] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.status = Verdict(self.status)

    @classmethod
    def could_not_run(cls, scenario_id: str, title: str, reason: str) -> ScenarioResult:
        return cls(scenario_id, title, ERROR, f"could not run: {reason}")

    @classmethod
    def lacks(cls, scenario_id: str, title: str, reason: str) -> ScenarioResult:
        """The target lacks a capability the scenario needs: unknown, never fail or pass."""
        return cls(scenario_id, title, UNKNOWN, reason,
                   checks=[CheckRecord("the target offers what this scenario needs",
                                       "steady-state", UNKNOWN, {"reason": reason}, 0.0)])

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": str(self.status),
                "reason": self.reason, "duration_s": round(self.duration_s, 3),
                "checks": [c.as_json() for c in self.checks], "metrics": self.metrics,
                "faults": self.faults}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioResult:
        return cls(data["id"], data.get("title", ""), Verdict(data["status"]),
                   data.get("reason", ""), 0.0, float(data.get("duration_s", 0.0)),
                   [CheckRecord.from_json(c) for c in data.get("checks", [])],
                   dict(data.get("metrics") or {}), list(data.get("faults") or []))
