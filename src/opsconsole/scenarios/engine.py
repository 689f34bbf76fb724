"""Scenario engine: steady state → method (with safeguards) → rollbacks → verify.

A scenario declares a steady-state hypothesis (checks on live probe state or on
the system itself), a method (actions, faults, waits, load) and rollbacks. The
hypothesis is checked before the method and again after the rollbacks; the
``safeguards`` are re-checked continuously while the method runs and abort it on
deviation — rollbacks and healing still run. Every check yields pass, warn, fail or
unknown with its evidence and duration (a check whose own code breaks is ``error``);
the scenario's verdict follows :mod:`opsconsole.core.verdict`, and the same events
drive the TUI, the journal and the report.

Read-only (``read_only = true``, ``--read-only``): a scenario declares what it changes on
the target (:attr:`Scenario.mutates`) and each step that changes it goes through
:meth:`Run.mutate` (faults through :meth:`Run.inject` do by themselves). Under read-only a
mutating scenario is refused up front — nothing runs, the result is ``unknown`` with the
list of what it would change — unless it declares :attr:`Scenario.observes_read_only`:
then its read-only checks run and its first mutating step stops it, ``unknown`` with
``read-only: would <what> on <target>``. A scenario that declares nothing is refused.
"""

from __future__ import annotations

import asyncio
import sysconfig
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..core.events import (
    CheckResult,
    MetricRecorded,
    ScenarioFinished,
    ScenarioStarted,
    ScenarioStep,
)
from ..core.results import CheckRecord, Evidence, ScenarioResult
from ..core.tasks import cancel_and_wait
from ..core.verdict import ERROR, FAIL, PASS, UNKNOWN, scenario_status
from ..errors import UserError

if TYPE_CHECKING:
    from ..faults.ledger import FaultRecord
    from ..faults.manager import FaultManager
    from ..session import ConsoleSession

Outcome = tuple[str, Evidence]  # (pass | fail | unknown, evidence)
CheckFn = Callable[["Run"], Awaitable[Outcome]]


#: check statuses that settle a check at once ("warn": worth a look, not a failure)
OK_STATUSES = frozenset({PASS, "warn"})


def outcome(ok: bool, **evidence: Any) -> Outcome:
    """A pass/fail outcome with its evidence."""
    return (PASS if ok else FAIL), evidence


class Abort(Exception):
    """Raised inside a method to stop it: the scenario fails; rollbacks still run."""


class Inconclusive(Abort):
    """The method cannot go on because something could not be observed (a check was
    ``unknown``): the scenario ends ``unknown`` unless a check failed; rollbacks run."""


class ReadOnlyRefused(Inconclusive):
    """A step that would change the target, refused because the session is read-only."""

    def __init__(self, what: str, target: str) -> None:
        self.what, self.target = what, target
        super().__init__(f"read-only: would {what} on {target}")


#: the phase of the check that records a scenario refused up front under read-only
READ_ONLY_PHASE = "read-only"
UNDECLARED = ("anything: it does not declare what it changes (Scenario.mutates), so "
              "read-only cannot vouch for it",)


def read_only_refusal(scenario: Scenario) -> tuple[str, ...]:
    """What ``scenario`` would change that makes a read-only run refuse it up front
    (empty: it may run, its mutating steps refused one by one)."""
    if scenario.mutates is None:
        return UNDECLARED
    return () if scenario.observes_read_only else tuple(scenario.mutates)


def _observation_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the target could not be observed", never a bug of ours."""
    import nats.errors

    from ..targets.http import NETWORK_ERRORS

    return (*NETWORK_ERRORS, nats.errors.Error, UserError)


def describe_exception(exc: BaseException) -> str:
    """What went wrong, in words, and where: the innermost frame of the code that raised
    it (a pack, a check), not the engine's or the standard library's."""
    where = ""
    cause = exc.__cause__ or exc.__context__
    tb = traceback.extract_tb(exc.__traceback__)
    if cause is not None:  # e.g. StopIteration inside a coroutine: its frames are deeper
        tb += traceback.extract_tb(cause.__traceback__)
    frames = [f for f in tb
              if not _library_frame(f.filename) and Path(f.filename).name != "engine.py"]
    if frames:
        last = frames[-1]
        path = Path(last.filename)
        shown = (path.relative_to(_PACKAGE_ROOT) if path.is_relative_to(_PACKAGE_ROOT)
                 else path.name)
        where = f" in {last.name}() at {shown}:{last.lineno}"
    text = str(exc) or "no message"
    hint = ""
    if isinstance(exc, StopIteration) or isinstance(cause, StopIteration):
        hint = " (a search with next() found nothing to pick)"
    elif isinstance(exc, KeyError):
        hint = f" (no entry {text} where one was expected)"
    return f"unexpected {type(exc).__name__}{where}: {text}{hint}"


_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the dir holding opsconsole/
_LIBRARY_DIRS = tuple(str(Path(p).resolve()) for p in {sysconfig.get_paths()["stdlib"],
                                                       sysconfig.get_paths()["purelib"],
                                                       sysconfig.get_paths()["platlib"]})


def _library_frame(filename: str) -> bool:
    return str(Path(filename).resolve()).startswith(_LIBRARY_DIRS)


@dataclass
class Check:
    """A named condition. ``within`` > 0 makes it wait up to that long to pass."""

    name: str
    fn: CheckFn
    within: float = 0.0


class ScenarioOptions(BaseModel):
    """A scenario's run options (rate, duration, mix…): subclass it with typed fields.

    The CLI's flags (``--rate``) and ``-o key=value``, and the console's options form, are
    derived from these models: a field's ``description`` is its help text, and a value from
    a flag, ``-o`` or the form is validated here, so a bad one is one line naming it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)


def option(default: Any, description: str, metavar: str = "") -> Any:
    """A field of a :class:`ScenarioOptions` model: its default, its help text and the
    flag's value placeholder (``SECONDS``)."""
    return Field(default, description=description,
                 json_schema_extra={"metavar": metavar} if metavar else None)


class Scenario:
    """Subclass per scenario; register it in a pack."""

    id: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    needs_lab: ClassVar[bool] = True
    #: why, in the result of a run on an inventory without [lab] (reported unknown)
    needs_lab_reason: ClassVar[str] = ("needs the embedded lab's process and network "
                                       "control (this inventory has no [lab] section)")
    safeguard_interval: ClassVar[float] = 1.0
    #: the run options this scenario accepts (``opsconsole run`` flags, e.g. ``--rate``)
    Options: ClassVar[type[ScenarioOptions]] = ScenarioOptions
    #: the steady state and method together never take longer than this (a target that
    #: never answers must not hang a run): past it the method is stopped and fails
    time_budget_s: ClassVar[float] = 600.0
    #: what this scenario changes on the target, in words ("terminate EC2 instances"); ``()``
    #: for a scenario that only observes. ``None`` (undeclared) is refused under read-only.
    #: Shown by ``--dry-run``; under read-only the scenario is refused up front with it.
    mutates: ClassVar[tuple[str, ...] | None] = None
    #: it observes usefully before its first mutating step: under read-only it runs, and
    #: that step (:meth:`Run.mutate`, :meth:`Run.inject`) stops it ``unknown: read-only``
    observes_read_only: ClassVar[bool] = False

    def budget_s(self) -> float:
        """This run's time budget (a scenario whose options set its length extends it)."""
        return self.time_budget_s

    @property
    def options(self) -> ScenarioOptions:
        """This run's options: the model's defaults until :meth:`configure`."""
        found = self.__dict__.get("_options")
        if found is None:
            found = self.__dict__["_options"] = self.Options()
        return found

    def configure(self, **options: Any) -> None:
        """Set run options, validated by :attr:`Options` (``pydantic.ValidationError`` for a
        bad value or a name this scenario does not take)."""
        self.__dict__["_options"] = self.Options.model_validate(
            {**self.options.model_dump(exclude_unset=True), **options})

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


def _stop_unless_ok(rec: CheckRecord) -> None:
    if rec.status == UNKNOWN:
        raise Inconclusive(f"check {rec.name!r} could not be decided (unknown)")
    if rec.status not in OK_STATUSES:
        raise Abort(f"check {rec.name!r} {rec.status}")


class Run:
    """What a scenario's code uses: checks, faults, waits, metrics, live state."""

    def __init__(self, session: ConsoleSession, faults: FaultManager, result: ScenarioResult,
                 run_id: str) -> None:
        self.session = session
        self.faults = faults
        self.result = result
        self.run_id = run_id
        self.phase = "method"
        self.last_step = ""  # what the method last said it was doing (for a timeout)
        self.refusals: list[ReadOnlyRefused] = []  # mutating steps refused (read-only)

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
        self.last_step = step
        self.session.bus.publish(ScenarioStep(run_id=self.run_id, scenario=self.result.id,
                                              phase=self.phase, step=step, status=status,
                                              detail=detail))

    @property
    def read_only(self) -> bool:
        """The session refuses every step that changes the target."""
        return bool(self.session.read_only)

    def mutate(self, what: str, target: str) -> None:
        """Declare that the next step changes ``target`` (``what``: "terminate the
        instance"). Under read-only it raises :class:`ReadOnlyRefused` — the step is never
        taken; the refusal is recorded as an ``unknown`` check and stops the scenario, even
        if the pack swallows the exception — else it returns and the step goes ahead."""
        if not self.read_only:
            return
        refusal = ReadOnlyRefused(what, target)
        if self.phase != "rollback":  # nothing was changed, so nothing to roll back
            self.refusals.append(refusal)
            self._put(CheckRecord(f"refused (read-only): {what}", self.phase, UNKNOWN,
                                  {"reason": str(refusal), "would_change": what,
                                   "target": target}, 0.0))
        raise refusal

    def metric(self, name: str, value: float, unit: str = "") -> None:
        v = float(value)  # 4 decimals; below 0.01 4 significant digits (a run's $0.00021)
        self.result.metrics[name] = round(v, 4) if abs(v) >= 0.01 else float(f"{v:.4g}")
        self.session.bus.publish(MetricRecorded(run_id=self.run_id, scenario=self.result.id,
                                                name=name, value=float(value), unit=unit))

    # --------------------------------------------------------------- checks
    async def check(self, check: Check) -> CheckRecord:
        """Evaluate a check (retrying until ``within`` when given); record it."""
        started = time.monotonic()
        deadline = started + check.within
        self.last_step = f"check {check.name!r}"
        while True:
            try:
                status, evidence = await check.fn(self)
            except Abort:
                raise
            except _observation_errors() as exc:  # the target could not be observed
                status, evidence = UNKNOWN, {"reason": "could not observe: "
                                             f"{type(exc).__name__}: {exc}"[:300]}
            except Exception as exc:  # the check's own code broke: not the target's fault
                status, evidence = ERROR, {"error": describe_exception(exc)}
            if status in OK_STATUSES or time.monotonic() >= deadline:
                break
            await asyncio.sleep(0.2)
        rec = CheckRecord(check.name, self.phase, status, evidence, time.monotonic() - started)
        self._put(rec)
        return rec

    def _put(self, rec: CheckRecord) -> None:
        """Record a check's outcome and publish it."""
        self.result.checks.append(rec)
        self.session.bus.publish(CheckResult(
            run_id=self.run_id, scenario=self.result.id, name=rec.name, status=rec.status,
            phase=rec.phase, evidence=rec.evidence, duration_s=rec.duration_s))

    async def record(self, name: str, result: Outcome, abort: bool = False) -> CheckRecord:
        """Record an outcome measured by the method itself as a check; with ``abort``,
        anything but a pass stops the method."""
        async def fn(_: Run) -> Outcome:
            return result

        rec = await self.check(Check(name, fn))
        if abort:
            _stop_unless_ok(rec)
        return rec

    async def expect(self, name: str, fn: CheckFn, within: float = 0.0) -> CheckRecord:
        """A method-phase check the method depends on: a failure aborts it (the scenario
        fails); an unknown stops it as inconclusive."""
        rec = await self.check(Check(name, fn, within))
        _stop_unless_ok(rec)
        return rec

    async def wait_until(self, what: str, cond: Callable[[], Any], timeout: float,
                         interval: float = 0.1) -> float:
        """Wait for ``cond`` (sync or async) with a deadline; return seconds waited."""
        started = time.monotonic()
        self.last_step = f"waiting for {what}"
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
        self.mutate(f"inject the fault {fault}", target)
        self.step(f"inject {fault} on {target}")
        rec = await self.faults.inject(fault, target, params, ttl_s=ttl_s, run_id=self.run_id)
        self.result.faults.append({"id": rec.id, "fault": fault, "target": target,
                                   "params": params, "injected_at": rec.created_at,
                                   "healed_at": None, "heal": ""})
        return rec

    async def heal(self, rec: FaultRecord) -> None:
        self.step(f"heal {rec.fault} on {rec.target}")
        current = (await self._ledger_records()).get(rec.id)
        if current is not None and current.open:
            await self.faults.heal(current)
        await self._mark_healed(rec.id)

    async def _ledger_records(self) -> dict[str, FaultRecord]:
        """The ledger, read off the loop (the file grows with the fault history)."""
        return await asyncio.to_thread(self.faults.ledger.records)

    async def _mark_healed(self, fault_id: str) -> None:
        note = (await self._ledger_records()).get(fault_id)
        if note is not None and note.open:
            return  # the heal failed (or never ran): the report says "not healed"
        for f in self.result.faults:
            if f["id"] == fault_id and f["healed_at"] is None:
                f["healed_at"] = time.time()
                f["heal"] = note.note if note else ""


async def run_scenario(scenario: Scenario, session: ConsoleSession, faults: FaultManager,
                       run_id: str | None = None) -> ScenarioResult:
    """Steady state, method (guarded), rollbacks and heals, steady state again; the
    verdict from :func:`opsconsole.core.verdict.scenario_status` and how it stopped."""
    run_id = run_id or uuid.uuid4().hex[:12]
    result = ScenarioResult(scenario.id, scenario.title, started_at=time.time())
    run = Run(session, faults, result, run_id)
    bus = session.bus
    bus.publish(ScenarioStarted(run_id=run_id, scenario=scenario.id, title=scenario.title))
    started = time.monotonic()
    if run.read_only and (would := read_only_refusal(scenario)):
        return _refused_up_front(run, would, started)
    stopped: tuple[str, str] | None = None  # (status, reason) when it did not run to its end
    verify = False
    budget = asyncio.timeout(scenario.budget_s())
    try:
        async with budget:
            run.phase = "steady-state"
            run.step("hypothesis before")
            before = [await run.check(c) for c in scenario.steady_state()]
            stopped = _steady_state_verdict(before)
            if stopped is None:
                run.phase = "method"
                verify = True
                await _method_with_safeguards(scenario, run)
    except TimeoutError as exc:
        if not budget.expired():
            stopped = ERROR, describe_exception(exc)
        else:
            stopped = FAIL, (f"aborted: exceeded its time budget of {scenario.budget_s():g} s "
                             f"in the {run.phase} (last step: {run.last_step or 'none'})")
    except ReadOnlyRefused as exc:
        stopped, verify = (UNKNOWN, str(exc)), False  # nothing changed: nothing to verify
    except Inconclusive as exc:
        stopped = UNKNOWN, f"stopped, inconclusive: {exc}"
    except Abort as exc:
        stopped = FAIL, f"aborted: {exc}"
    except asyncio.CancelledError:
        stopped, verify = (ERROR, "interrupted"), False
        raise
    except UserError as exc:
        stopped = ERROR, f"could not run: {exc}"
    except Exception as exc:
        stopped = ERROR, describe_exception(exc)
    finally:
        cleanup = await _rollback_and_heal(scenario, run)
        if run.refusals and (stopped is None or stopped[0] == FAIL):
            # the pack swallowed a refusal (and maybe aborted for want of the step): the
            # scenario is still unknown, read-only
            stopped, verify = (UNKNOWN, str(run.refusals[0])), False
        if verify and cleanup is None:
            await _verify(scenario, run)
        result.status, result.reason = _final_verdict(result.checks, stopped, cleanup)
        result.duration_s = time.monotonic() - started
        bus.publish(ScenarioFinished(run_id=run_id, scenario=scenario.id, status=result.status,
                                     duration_s=result.duration_s, reason=result.reason))
    return result


def _refused_up_front(run: Run, would: tuple[str, ...], started: float) -> ScenarioResult:
    """A read-only run of a scenario that would change the target: one ``unknown`` check
    listing what it would change, and nothing else run (no steady state, no rollback)."""
    result = run.result
    reason = "read-only: refused up front, it would " + "; ".join(would)
    run.phase = READ_ONLY_PHASE
    run._put(CheckRecord("refused up front (read-only)", READ_ONLY_PHASE, UNKNOWN,
                         {"reason": reason, "would_change": list(would)}, 0.0))
    result.status, result.reason = UNKNOWN, reason
    result.duration_s = time.monotonic() - started
    run.session.bus.publish(ScenarioFinished(run_id=run.run_id, scenario=result.id,
                                             status=result.status,
                                             duration_s=result.duration_s,
                                             reason=result.reason))
    return result


def _steady_state_verdict(before: list[CheckRecord]) -> tuple[str, str] | None:
    """None when the hypothesis held; else why the method is skipped."""
    failed = [c.name for c in before if c.status not in OK_STATUSES and c.status != UNKNOWN]
    unknown = [c.name for c in before if c.status == UNKNOWN]
    if failed:
        return FAIL, "steady state not met before the method: " + ", ".join(failed)
    if unknown:
        return UNKNOWN, ("steady state could not be established before the method "
                         "(unknown: " + ", ".join(unknown) + ")")
    return None


def _final_verdict(checks: list[CheckRecord], stopped: tuple[str, str] | None,
                   cleanup: str | None) -> tuple[str, str]:
    """A failed check always fails the scenario; then how it stopped; then the checks."""
    failed = [c.name for c in checks if c.status == FAIL]
    broken = [c.name for c in checks if c.status == ERROR]
    reasons = [stopped[1]] if stopped else []
    if cleanup:
        reasons.append(cleanup)
    if failed:
        unnamed = [n for n in failed if not stopped or n not in stopped[1]]
        if unnamed:  # after the abort's own reason, or first when it did not abort
            at = 1 if stopped and stopped[0] == FAIL else 0
            reasons.insert(at, "checks failed: " + ", ".join(unnamed))
        return FAIL, "; ".join(reasons)
    if stopped and stopped[0] == FAIL:
        return FAIL, "; ".join(reasons)
    if broken:
        reasons.insert(0, "a check's code broke: " + ", ".join(broken))
        return ERROR, "; ".join(reasons)
    if cleanup or (stopped and stopped[0] == ERROR):
        return ERROR, "; ".join(reasons)
    if stopped:  # unknown: inconclusive or no steady state
        return stopped
    status = scenario_status(c.status for c in checks)
    if status == UNKNOWN:
        return UNKNOWN, (f"no check could decide: all {len(checks)} unknown" if checks
                         else "no check was recorded")
    return status, ""


async def _method_with_safeguards(scenario: Scenario, run: Run) -> None:
    """Run the method while every safeguard is re-evaluated each ``safeguard_interval``.

    Evaluations are not recorded one by one (a guard is evaluated hundreds of times);
    the record is one check per guard: failed when it tripped (with what it saw, and the
    method is aborted), passed when it held for every evaluation, unknown when it was
    never evaluated or could never observe anything.
    """
    guards = scenario.safeguards()
    method = asyncio.create_task(scenario.method(run))
    if not guards:
        await method
        return
    seen: dict[str, list[Outcome]] = {g.name: [] for g in guards}

    async def watch() -> tuple[Check, Outcome]:
        while True:
            await asyncio.sleep(scenario.safeguard_interval)
            for guard in guards:
                try:
                    observed = await guard.fn(run)
                except _observation_errors() as exc:
                    observed = UNKNOWN, {"reason": f"could not observe: {exc}"[:300]}
                seen[guard.name].append(observed)
                if observed[0] == FAIL:
                    return guard, observed

    watcher = asyncio.create_task(watch())
    try:
        done, _ = await asyncio.wait({method, watcher}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        # bounded: a method that ignores cancels for 5 s is left behind, not awaited forever
        await cancel_and_wait([method, watcher], limit_s=5.0)
    if watcher in done and not watcher.cancelled() and watcher.exception() is None:
        guard, (status, evidence) = watcher.result()
        await run.record(f"safeguard: {guard.name}", (status, {
            **evidence, "evaluations": len(seen[guard.name])}))
        raise Abort(f"safeguard {guard.name!r} tripped")
    if watcher in done:
        watcher.result()  # the watcher itself broke: surface it
    for guard in guards:
        results = seen[guard.name]
        decided = [o for o in results if o[0] != UNKNOWN]
        status = UNKNOWN if not decided else PASS
        evidence = (decided[-1][1] if decided else
                    {"reason": "never evaluated: the method ended first" if not results
                     else results[-1][1].get("reason", "never observed")})
        await run.record(f"safeguard: {guard.name}", (status, {
            **evidence, "evaluations": len(results), "observed": len(decided)}))
    method.result()  # re-raise the method's own exception, if any


async def _rollback_and_heal(scenario: Scenario, run: Run) -> str | None:
    """Always: the scenario's rollbacks, then heal this run's faults. Returns what went
    wrong (a rollback that failed, a fault left unhealed), or None."""
    run.phase = "rollback"
    problems: list[str] = []
    try:
        await asyncio.shield(scenario.rollback(run))
    except ReadOnlyRefused as exc:  # read-only: nothing was changed, so nothing to undo
        run.step("rollback", "skipped", str(exc))
    except Exception as exc:
        problems.append(f"rollback failed: {describe_exception(exc)}")
    if not run.faults.read_only:
        healed = await asyncio.shield(run.faults.heal_all(run_id=run.run_id))
        for rec in healed:
            await run._mark_healed(rec.id)
            if rec.status != "healed":
                problems.append(f"fault {rec.fault} on {rec.target} not healed: {rec.note}")
    for f in run.result.faults:
        if f["healed_at"] is None:  # healed earlier by the method itself
            await run._mark_healed(f["id"])
    return "; ".join(problems) or None


async def _verify(scenario: Scenario, run: Run) -> None:
    """The steady-state hypothesis again, after the rollbacks (given time to recover)."""
    run.phase = "verify"
    run.step("hypothesis after")
    for check in scenario.steady_state():
        try:
            await run.check(Check(check.name, check.fn, within=max(check.within, 30.0)))
        except ReadOnlyRefused:  # recorded as an unknown check by Run.mutate
            continue
