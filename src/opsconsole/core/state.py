"""The state reducer: the latest picture of the stack plus short time series.

It is fed by the bus (live) or a journal (replay) and is the only thing panes
read. ``version`` increases on every change, so a UI refreshes only when
something moved.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .events import (
    AlertChanged,
    CanaryReport,
    CheckResult,
    Event,
    FaultHealed,
    FaultInjected,
    InstanceSampled,
    LeafSampled,
    LoadReport,
    NatsNodeSampled,
    Note,
    ProbeFailed,
    ScenarioFinished,
    ScenarioStarted,
    ScenarioStep,
    SessionsSampled,
    VaultNodeSampled,
)

SERIES_POINTS = 120  # two minutes at one sample a second


@dataclass
class Series:
    """A ring buffer of (ts, value) points."""

    points: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=SERIES_POINTS))

    def add(self, ts: float, value: float) -> None:
        self.points.append((ts, value))

    def values(self) -> list[float]:
        return [v for _, v in self.points]

    @property
    def last(self) -> float | None:
        return self.points[-1][1] if self.points else None


@dataclass
class Counter:
    """Turns a cumulative counter into a rate series (restarts reset, never go negative)."""

    rate: Series = field(default_factory=Series)
    _prev: tuple[float, int] | None = None

    def feed(self, ts: float, count: int) -> None:
        if self._prev is not None:
            pts, pcount = self._prev
            dt = ts - pts
            if dt > 0 and count >= pcount:
                self.rate.add(ts, (count - pcount) / dt)
        self._prev = (ts, count)


@dataclass
class NatsView:
    sample: NatsNodeSampled
    msgs_in: Counter = field(default_factory=Counter)
    msgs_out: Counter = field(default_factory=Counter)


@dataclass
class LeafView:
    sample: LeafSampled
    to_local: Counter = field(default_factory=Counter)
    to_central: Counter = field(default_factory=Counter)
    # Filled by relay canaries; None (no canary yet) renders as "—", never as 0.
    canary: dict[str, CanaryReport] = field(default_factory=dict)  # by path: c2l, l2c

    @property
    def lost(self) -> int | None:
        return sum(c.lost for c in self.canary.values()) if self.canary else None

    @property
    def duplicated(self) -> int | None:
        return sum(c.duplicated for c in self.canary.values()) if self.canary else None


@dataclass
class TimelineEntry:
    ts: float
    text: str
    level: str = "info"  # info | warn | error


@dataclass
class FaultWindow:
    """A fault's lifetime, for marking time series; ``end`` is None while active."""

    fault_id: str
    label: str
    start: float
    end: float | None = None


@dataclass
class ScenarioProgress:
    run_id: str
    scenario: str
    phase: str = ""
    step: str = ""
    status: str = "running"  # running | pass | fail | error
    checks: dict[str, str] = field(default_factory=dict)  # check name -> status


@dataclass
class State:
    nats: dict[str, NatsView] = field(default_factory=dict)
    leaves: dict[str, LeafView] = field(default_factory=dict)
    vault: dict[str, VaultNodeSampled] = field(default_factory=dict)
    instances: dict[str, InstanceSampled] = field(default_factory=dict)
    probe_errors: dict[str, str] = field(default_factory=dict)
    load: LoadReport | None = None
    alerts: dict[str, AlertChanged] = field(default_factory=dict)  # pending/firing, by key
    sessions: SessionsSampled | None = None
    vault_leader: str | None = None
    last_vault_leader: str | None = None  # survives leaderless gaps, to name the change
    leader_changed_at: float | None = None  # set on a change, not on the first leader seen
    faults: dict[str, FaultInjected] = field(default_factory=dict)  # active, by id
    fault_windows: deque[FaultWindow] = field(default_factory=lambda: deque(maxlen=200))
    scenario: ScenarioProgress | None = None  # the run in progress, or the last one
    timeline: deque[TimelineEntry] = field(default_factory=lambda: deque(maxlen=2000))
    version: int = 0

    @property
    def active_faults(self) -> int:
        return len(self.faults)

    # ------------------------------------------------------------------ reduce
    def apply(self, event: Event) -> None:
        handler = _HANDLERS.get(type(event))
        if handler is not None:
            handler(self, event)
            self.version += 1

    def note(self, ts: float, text: str, level: str = "info") -> None:
        self.timeline.append(TimelineEntry(ts, text, level))

    def _nats(self, ev: NatsNodeSampled) -> None:
        view = self.nats.get(ev.name)
        if view is None:
            view = self.nats[ev.name] = NatsView(ev)
        else:
            self._transition(ev.ts, f"NATS {ev.name}", view.sample.reachable,
                             view.sample.healthy, ev.reachable, ev.healthy, ev.reason)
            view.sample = ev
        if ev.reachable:
            view.msgs_in.feed(ev.ts, ev.in_msgs)
            view.msgs_out.feed(ev.ts, ev.out_msgs)

    def _leaf(self, ev: LeafSampled) -> None:
        view = self.leaves.get(ev.name)
        if view is None:
            view = self.leaves[ev.name] = LeafView(ev)
        else:
            old = view.sample
            self._transition(ev.ts, f"leaf {ev.name}", old.reachable, old.healthy,
                             ev.reachable, ev.healthy, ev.reason)
            if ev.hub and old.hub and ev.hub != old.hub:
                self.note(ev.ts, f"leaf {ev.name} moved hub {old.hub} → {ev.hub}", "warn")
            view.sample = ev
        if ev.reachable:
            view.to_local.feed(ev.ts, ev.to_local_msgs)
            view.to_central.feed(ev.ts, ev.to_central_msgs)

    def _vault(self, ev: VaultNodeSampled) -> None:
        old = self.vault.get(ev.name)
        if old is not None:
            was_ok = old.reachable and not old.sealed
            now_ok = ev.reachable and not ev.sealed
            if was_ok and not now_ok:
                why = ev.reason if not ev.reachable else "sealed"
                self.note(ev.ts, f"Vault {ev.name} down: {why}", "error")
            elif now_ok and not was_ok:
                self.note(ev.ts, f"Vault {ev.name} back", "info")
        self.vault[ev.name] = ev
        leaders = [n for n, s in self.vault.items() if s.reachable and s.leader]
        leader = leaders[0] if len(leaders) == 1 else None
        if leader == self.vault_leader:
            return
        if leader is None:
            self.note(ev.ts, f"Vault has no leader (was {self.vault_leader})", "error")
        elif self.last_vault_leader not in (None, leader):
            self.note(ev.ts, f"Vault leader changed {self.last_vault_leader} → {leader}", "warn")
            self.leader_changed_at = ev.ts
        self.vault_leader = leader
        if leader is not None:
            self.last_vault_leader = leader

    def _instance(self, ev: InstanceSampled) -> None:
        old = self.instances.get(ev.instance_id)
        if old is None or old.state != ev.state:
            self.note(ev.ts, f"instance {ev.instance_id} ({ev.owner}) {ev.state}")
        self.instances[ev.instance_id] = ev

    def _probe_failed(self, ev: ProbeFailed) -> None:
        if not ev.reason:  # an empty reason marks recovery
            if self.probe_errors.pop(ev.probe, None) is not None:
                self.note(ev.ts, f"probe {ev.probe} recovered")
            return
        if self.probe_errors.get(ev.probe) != ev.reason:
            self.note(ev.ts, f"probe {ev.probe}: {ev.reason}", "warn")
        self.probe_errors[ev.probe] = ev.reason

    def _sessions(self, ev: SessionsSampled) -> None:
        old = self.sessions
        if old is not None and old.reachable and ev.reachable and old.running != ev.running:
            verb = "up" if ev.running > old.running else "down"
            self.note(ev.ts, f"sessions: edit containers scaled {verb} to {ev.running}"
                      f"/{ev.max_capacity}")
        elif old is not None and old.reachable != ev.reachable:
            self.note(ev.ts, "sessions stack " + ("reachable again" if ev.reachable
                                                  else f"unreachable: {ev.reason}"),
                      "info" if ev.reachable else "error")
        self.sessions = ev

    def _alert(self, ev: AlertChanged) -> None:
        key = f"{ev.name}/{ev.instance}"
        if ev.state == "resolved":
            if self.alerts.pop(key, None) is not None:
                self.note(ev.ts, f"alert {ev.name} resolved ({ev.instance})")
            return
        if ev.state == "firing":
            self.note(ev.ts, f"alert {ev.name} FIRING: {ev.summary}",
                      "error" if ev.severity == "critical" else "warn")
        self.alerts[key] = ev

    @property
    def firing_alerts(self) -> list[AlertChanged]:
        return sorted((a for a in self.alerts.values() if a.state == "firing"),
                      key=lambda a: (a.severity != "critical", a.name, a.instance))

    def _load(self, ev: LoadReport) -> None:
        if ev.final and (self.load is None or not self.load.final
                         or self.load.run_id != ev.run_id):
            p99 = ev.percentiles.get("p99")
            self.note(ev.ts, f"load {ev.scenario} finished: {ev.throughput_rps:.0f} req/s"
                      + (f", p99 {p99:.1f} ms" if p99 is not None else ""))
        self.load = ev

    def _fault_injected(self, ev: FaultInjected) -> None:
        self.faults[ev.fault_id] = ev
        self.fault_windows.append(FaultWindow(ev.fault_id, f"{ev.fault} {ev.target}", ev.ts))
        self.note(ev.ts, f"FAULT {ev.fault} on {ev.target} ({ev.fault_id})", "warn")

    def _fault_healed(self, ev: FaultHealed) -> None:
        self.faults.pop(ev.fault_id, None)
        for window in self.fault_windows:
            if window.fault_id == ev.fault_id and window.end is None:
                window.end = ev.ts
        verdict = "healed" if ev.ok else "HEAL FAILED"
        self.note(ev.ts, f"{verdict} {ev.fault} on {ev.target}: {ev.how}",
                  "info" if ev.ok else "error")

    def _scenario_started(self, ev: ScenarioStarted) -> None:
        self.scenario = ScenarioProgress(ev.run_id, ev.scenario)
        self.note(ev.ts, f"scenario {ev.scenario} started ({ev.run_id})")

    def _scenario_step(self, ev: ScenarioStep) -> None:
        if self.scenario and self.scenario.run_id == ev.run_id:
            self.scenario.phase, self.scenario.step = ev.phase, ev.step
        if ev.status == "failed":
            self.note(ev.ts, f"{ev.scenario}: {ev.phase} step {ev.step} failed: {ev.detail}",
                      "error")

    def _check(self, ev: CheckResult) -> None:
        if self.scenario and self.scenario.run_id == ev.run_id:
            self.scenario.checks[ev.name] = ev.status
        if ev.status != "pass":
            self.note(ev.ts, f"{ev.scenario}: check {ev.name} {ev.status.upper()}",
                      "error" if ev.status in ("fail", "error") else "warn")

    def _scenario_finished(self, ev: ScenarioFinished) -> None:
        if self.scenario and self.scenario.run_id == ev.run_id:
            self.scenario.status = ev.status
        self.note(ev.ts, f"scenario {ev.scenario} {ev.status.upper()} in {ev.duration_s:.1f} s"
                  + (f": {ev.reason}" if ev.reason else ""),
                  {"pass": "info", "unknown": "warn"}.get(ev.status, "error"))

    def _canary(self, ev: CanaryReport) -> None:
        view = self.leaves.get(ev.leaf)
        if view is None:
            return
        old = view.canary.get(ev.path)
        if old is not None and ev.lost > old.lost:
            self.note(ev.ts, f"canary {ev.leaf} {ev.path}: {ev.lost - old.lost} lost", "warn")
        view.canary[ev.path] = ev

    def _note(self, ev: Note) -> None:
        self.note(ev.ts, ev.text, ev.level)

    def _transition(self, ts: float, label: str, was_reachable: bool, was_healthy: bool,
                    reachable: bool, healthy: bool, reason: str) -> None:
        if was_reachable and not reachable:
            self.note(ts, f"{label} unreachable: {reason}", "error")
        elif reachable and not was_reachable:
            self.note(ts, f"{label} reachable again")
        elif reachable and was_healthy != healthy:
            self.note(ts, f"{label} {'healthy' if healthy else 'unhealthy'}",
                      "info" if healthy else "warn")


_HANDLERS = {
    NatsNodeSampled: State._nats,
    LeafSampled: State._leaf,
    VaultNodeSampled: State._vault,
    InstanceSampled: State._instance,
    ProbeFailed: State._probe_failed,
    LoadReport: State._load,
    AlertChanged: State._alert,
    SessionsSampled: State._sessions,
    Note: State._note,
    CanaryReport: State._canary,
    FaultInjected: State._fault_injected,
    FaultHealed: State._fault_healed,
    ScenarioStarted: State._scenario_started,
    ScenarioStep: State._scenario_step,
    CheckResult: State._check,
    ScenarioFinished: State._scenario_finished,
}
