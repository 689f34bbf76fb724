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
        cls = _REGISTRY[data["kind"]]
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True, kw_only=True)
class NatsNodeSampled(Event):
    """One central NATS node, from /varz /routez /leafz /healthz /jsz."""

    kind: ClassVar[str] = "nats.node"
    name: str
    reachable: bool
    reason: str = ""
    healthy: bool = False
    connections: int = 0
    routes: int = 0
    leafnodes: int = 0
    in_msgs: int = 0
    out_msgs: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    slow_consumers: int = 0
    mem_bytes: int = 0
    cpu_percent: float = 0.0
    uptime: str = ""
    js_meta_leader: str = ""


@dataclass(frozen=True, kw_only=True)
class LeafSampled(Event):
    """One leaf (vault-instance) NATS server and its link to central.

    ``to_local_msgs`` / ``to_central_msgs`` are the link's cumulative counters
    (messages received from / sent to the hub); the reducer turns them into rates.
    """

    kind: ClassVar[str] = "nats.leaf"
    name: str
    user: str
    reachable: bool
    reason: str = ""
    healthy: bool = False
    hub: str = ""
    connections: int = 0
    to_local_msgs: int = 0
    to_central_msgs: int = 0


@dataclass(frozen=True, kw_only=True)
class VaultNodeSampled(Event):
    """One Vault/OpenBao node: sys/health plus its row in the raft configuration."""

    kind: ClassVar[str] = "vault.node"
    name: str
    reachable: bool
    reason: str = ""
    initialized: bool = False
    sealed: bool | None = None
    standby: bool | None = None
    version: str = ""
    leader: bool = False
    voter: bool = False
    autopilot_healthy: bool | None = None
    last_index: int | None = None
    lag: int | None = None


@dataclass(frozen=True, kw_only=True)
class InstanceSampled(Event):
    """One vault instance: its EC2 record plus its own health when present."""

    kind: ClassVar[str] = "instance"
    instance_id: str
    owner: str
    state: str
    instance_type: str = ""
    arch: str = ""
    private_ip: str = ""
    local_nats: str = "—"
    central_link: str = "—"
    manager: str = "—"
    last_event: str = ""


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


@dataclass(frozen=True, kw_only=True)
class CanaryReport(Event):
    """Cumulative relay-canary counters for one leaf and direction (c2l or l2c)."""

    kind: ClassVar[str] = "canary.report"
    leaf: str
    path: str
    sent: int
    delivered: int
    lost: int
    settled: int = 0  # fate known (older than the grace window): settled = delivered + lost
    duplicated: int
    reordered: int
    p50_ms: float | None = None
    p99_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class AlertChanged(Event):
    """An alert rule changed state for one instance: pending, firing or resolved."""

    kind: ClassVar[str] = "alert"
    name: str
    instance: str
    state: str  # pending | firing | resolved
    value: float = 0.0
    severity: str = ""
    summary: str = ""
    since: float = 0.0


@dataclass(frozen=True, kw_only=True)
class SessionsSampled(Event):
    """The email-to-preview sessions stack: sessions by status and edit containers."""

    kind: ClassVar[str] = "sessions"
    reachable: bool
    reason: str = ""
    running: int = 0  # edit containers up
    desired: int = 0
    max_capacity: int = 0
    sessions: dict[str, int] = field(default_factory=dict)  # status -> count
    scale_events: int = 0  # scale-up + scale-down so far
