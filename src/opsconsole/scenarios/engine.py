"""Scenario engine: steady state → method (with safeguards) → rollbacks → verify.

A scenario declares a steady-state hypothesis (checks on live probe state or on
the system itself), a method (actions, faults, waits, load) and rollbacks. The
hypothesis is checked before the method and again after the rollbacks; the
``safeguards`` are re-checked continuously while the method runs and abort it on
deviation — rollbacks and healing still run. Every check yields pass, fail or
unknown with its evidence and duration; the same events drive the TUI, the
journal and the report.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..core.events import (
    CheckResult,
    MetricRecorded,
    ScenarioFinished,
    ScenarioStarted,
    ScenarioStep,
)
from ..errors import UserError

if TYPE_CHECKING:
    from ..faults.ledger import FaultRecord
    from ..faults.manager import FaultManager
    from ..session import ConsoleSession

Evidence = dict[str, Any]
Outcome = tuple[str, Evidence]  # (pass | fail | unknown, evidence)
CheckFn = Callable[["Run"], Awaitable[Outcome]]


#: check statuses that do not fail a scenario ("warn": worth a look, not a failure)
OK_STATUSES = frozenset({"pass", "warn"})


def outcome(ok: bool, **evidence: Any) -> Outcome:
    """A pass/fail outcome with its evidence."""
    return ("pass" if ok else "fail"), evidence


class Abort(Exception):
    """Raised inside a method to stop it; rollbacks still run."""


@dataclass
class Check:
    """A named condition. ``within`` > 0 makes it wait up to that long to pass."""

    name: str
    fn: CheckFn
    within: float = 0.0


@dataclass
class CheckRecord:
    name: str
    phase: str
    status: str
    evidence: Evidence
    duration_s: float

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "phase": self.phase, "status": self.status,
                "evidence": self.evidence, "duration_s": round(self.duration_s, 3)}


@dataclass
class ScenarioResult:
    id: str
    title: str
    status: str = "pass"  # pass | fail | error
    reason: str = ""
    started_at: float = 0.0
    duration_s: float = 0.0
    checks: list[CheckRecord] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "status": self.status,
                "reason": self.reason, "duration_s": round(self.duration_s, 3),
                "checks": [c.as_json() for c in self.checks], "metrics": self.metrics,
                "faults": self.faults}


class Scenario:
    """Subclass per scenario; register it in a pack."""

    id: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    needs_lab: ClassVar[bool] = True
    safeguard_interval: ClassVar[float] = 1.0
    #: run options this scenario accepts (``opsconsole run`` flags, e.g. ``rate``)
    OPTIONS: ClassVar[tuple[str, ...]] = ()

    def configure(self, **options: Any) -> None:
        """Apply run options (already validated by the CLI); unknown names are a bug."""
        for name, value in options.items():
            if name not in self.OPTIONS:
                raise ValueError(f"{self.id} takes no option {name!r}")
            setattr(self, name, value)

    def steady_state(self) -> list[Check]:
        return []

    def safeguards(self) -> list[Check]:
        return []

    def plan(self) -> list[str]:
        """Human description of the method, for --dry-run."""
        return []

    async def method(self, run: Run) -> None:
        raise NotImplementedError

    async def rollback(self, run: Run) -> None:
        """Extra rollbacks; the run's own faults are always healed after this."""


class Run:
    """What a scenario's code uses: checks, faults, waits, metrics, live state."""

    def __init__(self, session: ConsoleSession, faults: FaultManager, result: ScenarioResult,
                 run_id: str) -> None:
        self.session = session
        self.faults = faults
        self.result = result
        self.run_id = run_id
        self.phase = "method"

    # -------------------------------------------------------------- context
    @property
    def state(self):  # the live reducer state, fed by the probes
        return self.session.state

    @property
    def lab(self):
        if self.session.lab is None:
            raise UserError(f"{self.result.id} needs the embedded lab", exit_code=2)
        return self.session.lab

    @property
    def inventory(self):
        return self.session.resolved_inventory

    @property
    def http(self):
        return self.session.http

    def step(self, step: str, status: str = "running", detail: str = "") -> None:
        self.session.bus.publish(ScenarioStep(run_id=self.run_id, scenario=self.result.id,
                                              phase=self.phase, step=step, status=status,
                                              detail=detail))

    def metric(self, name: str, value: float, unit: str = "") -> None:
        self.result.metrics[name] = round(float(value), 4)
        self.session.bus.publish(MetricRecorded(run_id=self.run_id, scenario=self.result.id,
                                                name=name, value=float(value), unit=unit))

    # --------------------------------------------------------------- checks
    async def check(self, check: Check) -> CheckRecord:
        """Evaluate a check (retrying until ``within`` when given); record it."""
        started = time.monotonic()
        deadline = started + check.within
        while True:
            try:
                status, evidence = await check.fn(self)
            except Abort:
                raise
            except Exception as exc:  # a check that cannot evaluate is unknown, not a crash
                status, evidence = "unknown", {"error": f"{type(exc).__name__}: {exc}"}
            if status in OK_STATUSES or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.2)
        rec = CheckRecord(check.name, self.phase, status, evidence, time.monotonic() - started)
        self.result.checks.append(rec)
        self.session.bus.publish(CheckResult(
            run_id=self.run_id, scenario=self.result.id, name=check.name, status=status,
            phase=self.phase, evidence=evidence, duration_s=rec.duration_s))
        return rec

    async def record(self, name: str, result: Outcome, abort: bool = False) -> CheckRecord:
        """Record an outcome measured by the method itself as a check; with ``abort``,
        anything but a pass stops the method."""
        async def fn(_: Run) -> Outcome:
            return result

        rec = await self.check(Check(name, fn))
        if abort and rec.status not in OK_STATUSES:
            raise Abort(f"check {name} {rec.status}")
        return rec

    async def expect(self, name: str, fn: CheckFn, within: float = 0.0) -> CheckRecord:
        """A method-phase check; a failure aborts the method."""
        rec = await self.check(Check(name, fn, within))
        if rec.status not in OK_STATUSES:
            raise Abort(f"check {name} {rec.status}")
        return rec

    async def wait_until(self, what: str, cond: Callable[[], Any], timeout: float,
                         interval: float = 0.1) -> float:
        """Wait for ``cond`` (sync or async) with a deadline; return seconds waited."""
        started = time.monotonic()
        while True:
            value = cond()
            if asyncio.iscoroutine(value):
                value = await value
            if value:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise Abort(f"timed out after {timeout:.0f}s waiting for {what}")
            await asyncio.sleep(interval)

    # --------------------------------------------------------------- faults
    async def inject(self, fault: str, target: str, ttl_s: float = 300.0,
                     **params: Any) -> FaultRecord:
        self.step(f"inject {fault} on {target}")
        rec = await self.faults.inject(fault, target, params, ttl_s=ttl_s, run_id=self.run_id)
        self.result.faults.append({"id": rec.id, "fault": fault, "target": target,
                                   "params": params, "injected_at": rec.created_at,
                                   "healed_at": None, "heal": ""})
        return rec

    async def heal(self, rec: FaultRecord) -> None:
        self.step(f"heal {rec.fault} on {rec.target}")
        current = self.faults.ledger.records().get(rec.id)
        if current is not None and current.open:
            await self.faults.heal(current)
        self._mark_healed(rec.id)

    def _mark_healed(self, fault_id: str) -> None:
        note = self.faults.ledger.records().get(fault_id)
        for f in self.result.faults:
            if f["id"] == fault_id and f["healed_at"] is None:
                f["healed_at"] = time.time()
                f["heal"] = note.note if note else ""


async def run_scenario(scenario: Scenario, session: ConsoleSession, faults: FaultManager,
                       run_id: str | None = None) -> ScenarioResult:
    run_id = run_id or uuid.uuid4().hex[:12]
    result = ScenarioResult(scenario.id, scenario.title, started_at=time.time())
    run = Run(session, faults, result, run_id)
    bus = session.bus
    bus.publish(ScenarioStarted(run_id=run_id, scenario=scenario.id, title=scenario.title))
    started = time.monotonic()
    try:
        run.phase = "steady-state"
        run.step("hypothesis before")
        before = [await run.check(c) for c in scenario.steady_state()]
        if any(c.status not in OK_STATUSES for c in before):
            result.status, result.reason = "fail", "steady state not met before the method"
        else:
            run.phase = "method"
            await _method_with_safeguards(scenario, run)
    except Abort as exc:
        result.status, result.reason = "fail", f"aborted: {exc}"
    except asyncio.CancelledError:
        result.status, result.reason = "error", "interrupted"
        raise
    except UserError as exc:
        result.status, result.reason = "error", str(exc)
    except Exception as exc:
        result.status, result.reason = "error", f"{type(exc).__name__}: {exc}"
    finally:
        await _rollback_and_verify(scenario, run, result)
        result.duration_s = time.monotonic() - started
        if result.status == "pass" and any(c.status not in OK_STATUSES
                                           for c in result.checks):
            result.status = "fail"
            failed = [c.name for c in result.checks if c.status not in OK_STATUSES]
            result.reason = "checks not passed: " + ", ".join(failed)
        bus.publish(ScenarioFinished(run_id=run_id, scenario=scenario.id, status=result.status,
                                     duration_s=result.duration_s, reason=result.reason))
    return result


async def _method_with_safeguards(scenario: Scenario, run: Run) -> None:
    guards = scenario.safeguards()
    method = asyncio.create_task(scenario.method(run))
    if not guards:
        await method
        return

    async def watch() -> str:
        while True:
            await asyncio.sleep(scenario.safeguard_interval)
            for guard in guards:
                rec = await run.check(guard)
                if rec.status == "fail":
                    return f"safeguard {guard.name} failed"

    watcher = asyncio.create_task(watch())
    done, _ = await asyncio.wait({method, watcher}, return_when=asyncio.FIRST_COMPLETED)
    if watcher in done:
        method.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await method
        raise Abort(watcher.result())
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    method.result()  # re-raise the method's own exception, if any


async def _rollback_and_verify(scenario: Scenario, run: Run, result: ScenarioResult) -> None:
    """Always: scenario rollbacks, heal this run's faults, then verify steady state."""
    run.phase = "rollback"
    try:
        await asyncio.shield(scenario.rollback(run))
    except Exception as exc:
        result.status = "error" if result.status == "pass" else result.status
        result.reason = result.reason or f"rollback failed: {exc}"
    healed = await asyncio.shield(run.faults.heal_all(run_id=run.run_id)) \
        if not run.faults.read_only else []
    for rec in healed:
        run._mark_healed(rec.id)
    for f in result.faults:
        if f["healed_at"] is None:  # healed earlier by the method itself
            run._mark_healed(f["id"])
    if result.reason.startswith("steady state not met"):
        return
    run.phase = "verify"
    run.step("hypothesis after")
    for check in scenario.steady_state():
        await run.check(Check(check.name, check.fn, within=max(check.within, 30.0)))
