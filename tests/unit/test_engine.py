"""The scenario engine on fake scenarios and a fake fault kind (no process, no target).

Each test builds the situation it names — a steady state that fails, a method that aborts,
a run that is cancelled, a safeguard that trips — and checks the verdict, the reason and
that rollbacks and heals ran.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from opsconsole.config import Inventory
from opsconsole.faults import REGISTRY, FaultContext, FaultKind, FaultLedger, FaultManager
from opsconsole.scenarios.engine import (
    Abort,
    Check,
    Outcome,
    Run,
    Scenario,
    outcome,
    run_scenario,
)
from opsconsole.session import ConsoleSession


class Switch(FaultKind):
    """A fault on a flag: inject sets it, heal clears it (or fails, when told to)."""

    id = "unit.switch"
    title = "flip a flag"
    state: ClassVar[dict[str, Any]] = {}

    def targets(self, ctx: FaultContext) -> list[str]:
        return ["flag"]

    async def prepare(self, ctx, target, params):
        return {"target": target}

    async def inject(self, ctx, target, params, heal):
        self.state[target] = True

    async def heal(self, ctx, spec):
        if self.state.get("heal_breaks"):
            raise RuntimeError("the heal broke")
        self.state[spec["target"]] = False
        return "cleared"


@pytest.fixture
def switch(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    kind = Switch()
    kind.state.clear()
    monkeypatch.setitem(REGISTRY, Switch.id, kind)
    return kind.state


@pytest.fixture
def session(tmp_path) -> ConsoleSession:
    sess = ConsoleSession(Inventory(name="unit"), probes=False)
    ctx = FaultContext(sess.inventory, None)  # type: ignore[arg-type]  # no HTTP needed
    sess.faults = FaultManager(ctx, sess.bus, ledger=FaultLedger(tmp_path / "faults.jsonl"))
    return sess


def fixed(status: str, **evidence: Any) -> Check:
    async def fn(_: Run) -> Outcome:
        return status, evidence

    return Check(f"always {status}", fn)


class Recording(Scenario):
    """Counts what ran; subclasses set the steady state and the method."""

    id = "unit.recording"
    title = "recording"
    needs_lab = False

    def __init__(self) -> None:
        self.ran: list[str] = []

    async def rollback(self, run: Run) -> None:
        self.ran.append("rollback")


async def _run(scenario: Scenario, session: ConsoleSession):
    assert session.faults is not None
    return await run_scenario(scenario, session, session.faults)


async def test_a_failed_steady_state_skips_the_method(session) -> None:
    class S(Recording):
        def steady_state(self):
            return [fixed("pass"), fixed("fail", why="broken")]

        async def method(self, run):
            self.ran.append("method")

    sc = S()
    res = await _run(sc, session)
    assert res.status == "fail" and "steady state not met" in res.reason
    assert "always fail" in res.reason
    assert sc.ran == ["rollback"]  # no method, rollbacks still
    assert [c.phase for c in res.checks] == ["steady-state", "steady-state"]  # no verify


async def test_an_unknown_steady_state_is_unknown_and_skips_the_method(session) -> None:
    class S(Recording):
        def steady_state(self):
            return [fixed("unknown", reason="no probe sample")]

        async def method(self, run):
            self.ran.append("method")

    sc = S()
    res = await _run(sc, session)
    assert res.status == "unknown" and "could not be established" in res.reason
    assert sc.ran == ["rollback"]


async def test_an_abort_after_passed_checks_fails_and_still_rolls_back_and_heals(
        session, switch) -> None:
    class S(Recording):
        async def method(self, run):
            await run.inject("unit.switch", "flag")
            await run.record("first", outcome(1 + 1 == 2))
            await run.wait_until("something that never happens", lambda: False, 0.2)
            self.ran.append("after the wait")

    sc = S()
    res = await _run(sc, session)
    assert res.status == "fail" and res.reason.startswith("aborted: timed out")
    assert [c.status for c in res.checks] == ["pass"]  # passed checks do not hide the abort
    assert sc.ran == ["rollback"] and switch["flag"] is False
    assert res.faults[0]["healed_at"] is not None and res.faults[0]["heal"] == "cleared"


async def test_cancellation_heals_and_re_raises(session, switch) -> None:
    started = asyncio.Event()

    class S(Recording):
        def steady_state(self):
            return [fixed("pass")]

        async def method(self, run):
            await run.inject("unit.switch", "flag")
            started.set()
            await asyncio.Event().wait()  # until cancelled

    sc = S()
    task = asyncio.create_task(_run(sc, session))
    await asyncio.wait_for(started.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert switch["flag"] is False and sc.ran == ["rollback"]
    assert not session.faults.ledger.open_records()


async def test_a_tripped_safeguard_aborts_the_method(session, switch) -> None:
    tripped = asyncio.Event()

    async def guard(_: Run) -> Outcome:
        ok = not switch.get("flag")
        if not ok:
            tripped.set()
        return outcome(ok, flag=switch.get("flag"))

    class S(Recording):
        safeguard_interval = 0.02

        def safeguards(self):
            return [Check("the flag stays down", guard)]

        async def method(self, run):
            await run.inject("unit.switch", "flag")
            await asyncio.wait_for(tripped.wait(), 5)
            await asyncio.Event().wait()  # the safeguard must stop this
            self.ran.append("method finished")

    sc = S()
    res = await asyncio.wait_for(_run(sc, session), 10)
    assert res.status == "fail" and "safeguard 'the flag stays down' tripped" in res.reason
    guard_rec = next(c for c in res.checks if c.name == "safeguard: the flag stays down")
    assert guard_rec.status == "fail" and guard_rec.evidence["flag"] is True
    assert sc.ran == ["rollback"] and switch["flag"] is False


async def test_a_safeguard_that_held_is_one_passed_check(session) -> None:
    done = asyncio.Event()
    seen = []

    async def guard(_: Run) -> Outcome:
        seen.append(1)
        if len(seen) >= 3:
            done.set()
        return outcome(len(seen) > 0, evaluations=len(seen))

    class S(Recording):
        safeguard_interval = 0.01

        def safeguards(self):
            return [Check("holds", guard)]

        async def method(self, run):
            await asyncio.wait_for(done.wait(), 5)
            await run.record("work", outcome(len(seen) >= 3))

    res = await _run(S(), session)
    assert res.status == "pass", res.reason
    rec = next(c for c in res.checks if c.name == "safeguard: holds")
    assert rec.status == "pass" and rec.evidence["evaluations"] >= 3


async def test_all_unknown_checks_make_an_unknown_scenario(session) -> None:
    class S(Recording):
        async def method(self, run):
            await run.record("a", ("unknown", {"reason": "no admin API"}))
            await run.record("b", ("unknown", {"reason": "no admin API"}))

    res = await _run(S(), session)
    assert res.status == "unknown" and res.reason == "no check could decide: all 2 unknown"


async def test_an_unknown_next_to_a_pass_does_not_fail_the_scenario(session) -> None:
    class S(Recording):
        async def method(self, run):
            await run.record("a", outcome(2 > 1))
            await run.record("b", ("unknown", {"reason": "capability missing"}))

    res = await _run(S(), session)
    assert res.status == "pass" and [c.status for c in res.checks] == ["pass", "unknown"]


async def test_a_check_that_cannot_observe_is_unknown_and_a_broken_check_is_error(
        session) -> None:
    async def refused(_: Run) -> Outcome:
        raise ConnectionRefusedError(111, "Connection refused")

    async def buggy(_: Run) -> Outcome:
        return {}["missing"]

    class S(Recording):
        async def method(self, run):
            await run.check(Check("target down", refused))
            await run.check(Check("bug", buggy))

    res = await _run(S(), session)
    by_name = {c.name: c for c in res.checks}
    assert by_name["target down"].status == "unknown"
    assert "could not observe" in by_name["target down"].evidence["reason"]
    assert by_name["bug"].status == "error"
    assert "KeyError" in by_name["bug"].evidence["error"] and "buggy()" in \
        by_name["bug"].evidence["error"]
    assert res.status == "error" and "a check's code broke: bug" in res.reason


async def test_a_scenario_error_is_reported_in_words_with_where(session) -> None:
    class S(Recording):
        async def method(self, run):
            pick = next(x for x in [1, 2] if x > 5)  # noqa: F841 - finds nothing
            self.ran.append("method")

    res = await _run(S(), session)
    assert res.status == "error"
    assert "found nothing to pick" in res.reason
    assert "in method() at test_engine.py:" in res.reason, res.reason


async def test_an_expect_that_is_unknown_stops_the_method_as_inconclusive(session) -> None:
    class S(Recording):
        async def method(self, run):
            async def fn(_: Run) -> Outcome:
                return "unknown", {"reason": "no leader sample yet"}

            await run.expect("leader known", fn)
            self.ran.append("after expect")

    sc = S()
    res = await _run(sc, session)
    assert res.status == "unknown" and "inconclusive" in res.reason
    assert sc.ran == ["rollback"]


async def test_a_fault_left_unhealed_makes_the_scenario_an_error(session, switch) -> None:
    switch["heal_breaks"] = True

    class S(Recording):
        async def method(self, run):
            await run.inject("unit.switch", "flag")
            await run.record("work", outcome(switch["flag"] is True))

    res = await _run(S(), session)
    assert res.status == "error" and "not healed" in res.reason
    assert res.faults[0]["healed_at"] is None  # the report says NO
    switch["heal_breaks"] = False
    await session.faults.heal_all()


def test_abort_is_what_wait_until_raises() -> None:
    assert issubclass(Abort, Exception)


async def test_a_method_that_never_ends_fails_on_its_time_budget_and_is_healed(
        session, switch) -> None:
    class S(Recording):
        time_budget_s = 0.5

        async def method(self, run):
            await run.inject("unit.switch", "flag")
            run.step("talk to a target that never answers")
            await asyncio.Event().wait()
            self.ran.append("method finished")

    sc = S()
    res = await asyncio.wait_for(_run(sc, session), 10)
    assert res.status == "fail"
    assert res.reason == ("aborted: exceeded its time budget of 0.5 s in the method "
                          "(last step: talk to a target that never answers)")
    assert sc.ran == ["rollback"] and switch["flag"] is False  # rolled back and healed
    assert res.faults[0]["healed_at"] is not None


async def test_a_timeout_raised_by_the_method_itself_is_not_the_budget(session) -> None:
    class S(Recording):
        async def method(self, run):
            async with asyncio.timeout(0.01):
                await asyncio.Event().wait()

    res = await asyncio.wait_for(_run(S(), session), 10)
    assert res.status == "error" and "TimeoutError" in res.reason
    assert "time budget" not in res.reason
