"""The one event vocabulary: probes, faults, scenarios and load emit these;
the state reducer, journal, metrics, reports and replay consume them.

Every event is a frozen dataclass with a ``kind`` tag and a wall-clock ``ts``;
``to_json``/``from_json`` round-trip it (the journal and replay rely on that).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

_REGISTRY: dict[str, type[Event]] = {}


@dataclass(frozen=True, kw_only=True)
class Event:
    kind: ClassVar[str] = "event"
    ts: float = field(default_factory=time.time)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _REGISTRY[cls.kind] = cls

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    @staticmethod
    def from_json(data: dict[str, Any]) -> Event:
        cls = _REGISTRY.get(data["kind"])
        if cls is None:  # a system's event: its module registers the kind when loaded
            from .system import systems

            systems()
            cls = _REGISTRY[data["kind"]]
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, kw_only=True)
class ProbeFailed(Event):
    """A whole probe failed (e.g. the AWS endpoint is down); becomes visible state."""

    kind: ClassVar[str] = "probe.failed"
    probe: str
    reason: str


@dataclass(frozen=True, kw_only=True)
class LoadReport(Event):
    """Progress or final result of a load run, for the Scale-test histograms pane.

    ``buckets`` is a list of ``[upper_bound_ms, count]`` pairs; percentiles in ms.
    """

    kind: ClassVar[str] = "load.report"
    run_id: str
    scenario: str
    final: bool = False
    elapsed_s: float = 0.0
    offered_rps: float = 0.0
    throughput_rps: float = 0.0
    errors: int = 0
    count: int = 0
    percentiles: dict[str, float] = field(default_factory=dict)
    buckets: list[list[float]] = field(default_factory=list)
    unit: str = "req/s"  # what throughput counts ("msg/s" for mesh.scale)


@dataclass(frozen=True, kw_only=True)
class Note(Event):
    """Free-text timeline entry (lab started, console attached, …)."""

    kind: ClassVar[str] = "note"
    text: str
    level: str = "info"


@dataclass(frozen=True, kw_only=True)
class FaultInjected(Event):
    kind: ClassVar[str] = "fault.injected"
    fault_id: str
    fault: str  # fault kind, e.g. "process.pause"
    target: str
    params: dict[str, Any] = field(default_factory=dict)
    ttl_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class FaultHealed(Event):
    kind: ClassVar[str] = "fault.healed"
    fault_id: str
    fault: str
    target: str
    how: str = ""  # what healing did, or why it was a no-op
    ok: bool = True


@dataclass(frozen=True, kw_only=True)
class ScenarioStarted(Event):
    kind: ClassVar[str] = "scenario.started"
    run_id: str
    scenario: str
    title: str = ""


@dataclass(frozen=True, kw_only=True)
class ScenarioStep(Event):
    """Progress inside a scenario: a phase or a method action began or ended."""

    kind: ClassVar[str] = "scenario.step"
    run_id: str
    scenario: str
    phase: str  # steady-state | method | rollback | verify
    step: str
    status: str = "running"  # running | done | failed
    detail: str = ""


@dataclass(frozen=True, kw_only=True)
class CheckResult(Event):
    kind: ClassVar[str] = "scenario.check"
    run_id: str
    scenario: str
    name: str
    status: str  # pass | fail | unknown
    phase: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    duration_s: float = 0.0


@dataclass(frozen=True, kw_only=True)
class MetricRecorded(Event):
    kind: ClassVar[str] = "scenario.metric"
    run_id: str
    scenario: str
    name: str
    value: float
    unit: str = ""


@dataclass(frozen=True, kw_only=True)
class ScenarioFinished(Event):
    kind: ClassVar[str] = "scenario.finished"
    run_id: str
    scenario: str
    status: str  # pass | fail | error
    duration_s: float = 0.0
    reason: str = ""
