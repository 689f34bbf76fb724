"""The state reducer: the latest picture of the stack plus short time series.

It is fed by the bus (live) or a journal (replay) and is the only thing panes read.
``version`` increases on every change, so a UI refreshes only when something moved.
The console's own picture (probes, faults, scenarios, load, timeline) lives here; each
registered system adds its slice (``state.vault``, ``state.nats``, …) with the handlers
for its events (:class:`opsconsole.core.system.Slice`).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import system as registry
from .events import (
    CheckResult,
    Event,
    FaultHealed,
    FaultInjected,
    LoadReport,
    Note,
    ProbeFailed,
    ScenarioFinished,
    ScenarioStarted,
    ScenarioStep,
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
    probe_errors: dict[str, str] = field(default_factory=dict)
    load: LoadReport | None = None
    faults: dict[str, FaultInjected] = field(default_factory=dict)  # active, by id
    fault_windows: deque[FaultWindow] = field(default_factory=lambda: deque(maxlen=200))
    scenario: ScenarioProgress | None = None  # the run in progress, or the last one
    timeline: deque[TimelineEntry] = field(default_factory=lambda: deque(maxlen=2000))
    version: int = 0
    #: each registered system's slice, by system name (also readable as ``state.<name>``)
    slices: dict[str, registry.Slice] = field(default_factory=dict)

    def __post_init__(self) -> None:
        handlers: dict[type[Event], Callable[[State, Any], None]] = dict(_CORE_HANDLERS)
        for system in registry.systems():
            part = system.state_slice()
            if part is None:
                continue
            self.slices[system.name] = part
            for etype, fn in type(part).handlers.items():
                handlers[etype] = functools.partial(_slice_handler, fn, part)
        self._handlers = handlers

    def __getattr__(self, name: str) -> Any:
        slices = self.__dict__.get("slices") or {}
        if name in slices:
            return slices[name]
        raise AttributeError(f"state has no {name!r} (no loaded system has that slice)")

    @property
    def active_faults(self) -> int:
        return len(self.faults)

    # ------------------------------------------------------------------ reduce
    def apply(self, event: Event) -> None:
        handler = self._handlers.get(type(event))
        if handler is not None:
            handler(self, event)
            self.version += 1

    def note(self, ts: float, text: str, level: str = "info") -> None:
        self.timeline.append(TimelineEntry(ts, text, level))

    def transition(self, ts: float, label: str, was_reachable: bool, was_healthy: bool,
                   reachable: bool, healthy: bool, reason: str) -> None:
        """Note a target going unreachable, coming back, or changing health."""
        if was_reachable and not reachable:
            self.note(ts, f"{label} unreachable: {reason}", "error")
        elif reachable and not was_reachable:
            self.note(ts, f"{label} reachable again")
        elif reachable and was_healthy != healthy:
            self.note(ts, f"{label} {'healthy' if healthy else 'unhealthy'}",
                      "info" if healthy else "warn")

    def _probe_failed(self, ev: ProbeFailed) -> None:
        if not ev.reason:  # an empty reason marks recovery
            if self.probe_errors.pop(ev.probe, None) is not None:
                self.note(ev.ts, f"probe {ev.probe} recovered")
            return
        if self.probe_errors.get(ev.probe) != ev.reason:
            self.note(ev.ts, f"probe {ev.probe}: {ev.reason}", "warn")
        self.probe_errors[ev.probe] = ev.reason

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

    def _note(self, ev: Note) -> None:
        self.note(ev.ts, ev.text, ev.level)



def _slice_handler(fn: Callable[[Any, State, Any], None], part: registry.Slice,
                   state: State, event: Event) -> None:
    fn(part, state, event)


_CORE_HANDLERS: dict[type[Event], Callable[[State, Any], None]] = {
    ProbeFailed: State._probe_failed,
    LoadReport: State._load,
    Note: State._note,
    FaultInjected: State._fault_injected,
    FaultHealed: State._fault_healed,
    ScenarioStarted: State._scenario_started,
    ScenarioStep: State._scenario_step,
    CheckResult: State._check,
    ScenarioFinished: State._scenario_finished,
}
