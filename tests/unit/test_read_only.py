"""Read-only means read-only: the engine's mechanism on fake scenarios (no process).

A scenario that declares it changes the target is refused up front (nothing of it runs); one
that observes first runs its read-only checks and is stopped at its first mutating step,
whose mutation is never called; either way the verdict is ``unknown`` with a ``read-only``
reason, in the exit code, JUnit and Markdown alike. Every built-in scenario declares what
it changes, and every command accepts ``--read-only``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from junitparser import JUnitXml

from opsconsole.cli import _load_inventory, build_parser, main
from opsconsole.config import Inventory
from opsconsole.core.results import ScenarioResult
from opsconsole.core.verdict import EXIT_FAIL, EXIT_PASS, UNKNOWN, run_verdict
from opsconsole.faults import FaultContext, FaultLedger, FaultManager
from opsconsole.report.writers import write_junit
from opsconsole.scenarios import all_scenarios
from opsconsole.scenarios.engine import (
    Abort,
    Check,
    Outcome,
    ReadOnlyRefused,
    Run,
    Scenario,
    outcome,
    read_only_refusal,
    run_scenario,
)
from opsconsole.session import ConsoleSession


def _session(tmp_path, read_only: bool) -> ConsoleSession:
    sess = ConsoleSession(Inventory(name="unit"), probes=False, read_only=read_only)
    ctx = FaultContext(sess.inventory, None)  # type: ignore[arg-type]  # no HTTP needed
    sess.faults = FaultManager(ctx, sess.bus, ledger=FaultLedger(tmp_path / "faults.jsonl"),
                               read_only=read_only)
    return sess


async def _run(scenario: Scenario, session: ConsoleSession) -> ScenarioResult:
    assert session.faults is not None
    return await run_scenario(scenario, session, session.faults)


class Target:
    """What the fake scenarios would change, and what of them ran."""

    changed: ClassVar[list[str]] = []
    ran: ClassVar[list[str]] = []


@pytest.fixture(autouse=True)
def _fresh() -> None:
    Target.changed.clear()
    Target.ran.clear()


def _observed(_: Run) -> Any:
    async def fn(_: Run) -> Outcome:
        Target.ran.append("steady")
        return outcome(True, seen="steady")

    return Check("the target answers", fn)


class Terminator(Scenario):
    """Its whole point is a change: refused up front under read-only."""

    id, title = "unit.terminator", "terminate things"
    needs_lab = False
    mutates = ("terminate every instance", "revoke the member's account")

    def steady_state(self) -> list[Check]:
        Target.ran.append("steady_state()")
        return [_observed(None)]  # type: ignore[arg-type]

    async def method(self, run: Run) -> None:
        Target.ran.append("method")
        run.mutate("terminate every instance", "fleet")
        Target.changed.append("terminated")

    async def rollback(self, run: Run) -> None:
        Target.ran.append("rollback")


class Observer(Scenario):
    """Observes first, then would change something."""

    id, title = "unit.observer", "look, then seal"
    needs_lab = False
    mutates = ("seal a standby",)
    observes_read_only = True

    async def method(self, run: Run) -> None:
        await run.record("metrics exported", outcome(True, families=12))
        run.mutate("seal", "vault-2")
        Target.changed.append("sealed")
        await run.record("sealed alert fires", outcome(True))


class Swallower(Observer):
    """A pack that catches the refusal and carries on: still unknown, still unchanged."""

    id = "unit.swallower"

    async def method(self, run: Run) -> None:
        await run.record("metrics exported", outcome(True))
        try:
            run.mutate("seal", "vault-2")
            Target.changed.append("sealed")
        except Abort:
            pass
        await run.record("looked again", outcome(True))


class Faulty(Observer):
    """Needs a fault: unknown under read-only, never a failure or an error."""

    id = "unit.faulty"
    mutates = ("inject unit.nothing",)

    async def method(self, run: Run) -> None:
        await run.record("before the fault", outcome(True))
        await run.inject("unit.nothing", "flag")
        Target.changed.append("injected")


class Undeclared(Scenario):
    """Says nothing about what it changes: read-only cannot vouch for it."""

    id, title = "unit.undeclared", "who knows"
    needs_lab = False

    async def method(self, run: Run) -> None:
        Target.ran.append("method")


async def test_a_mutating_scenario_is_refused_up_front_and_runs_nothing(tmp_path) -> None:
    result = await _run(Terminator(), _session(tmp_path, read_only=True))
    assert result.status == UNKNOWN
    assert Target.ran == [] and Target.changed == []  # no steady state, method, rollback
    assert result.reason == ("read-only: refused up front, it would terminate every "
                             "instance; revoke the member's account")
    [check] = result.checks
    assert (check.phase, check.status) == ("read-only", UNKNOWN)
    assert check.evidence["would_change"] == list(Terminator.mutates)
    assert check.evidence["reason"].startswith("read-only: ")


async def test_without_read_only_the_same_scenario_changes_the_target(tmp_path) -> None:
    result = await _run(Terminator(), _session(tmp_path, read_only=False))
    assert result.status == "pass"
    assert Target.changed == ["terminated"]
    assert Target.ran == ["steady_state()", "steady", "method", "rollback",
                          "steady_state()", "steady"]


async def test_an_observing_scenario_runs_its_reads_and_stops_at_the_mutation(tmp_path) -> None:
    result = await _run(Observer(), _session(tmp_path, read_only=True))
    assert Target.changed == []  # the mutation after run.mutate was never reached
    assert result.status == UNKNOWN
    assert result.reason == "read-only: would seal on vault-2"
    assert [(c.name, c.status) for c in result.checks] == [
        ("metrics exported", "pass"), ("refused (read-only): seal", UNKNOWN)]
    assert result.checks[1].evidence["reason"] == "read-only: would seal on vault-2"


async def test_a_swallowed_refusal_still_makes_the_scenario_unknown(tmp_path) -> None:
    result = await _run(Swallower(), _session(tmp_path, read_only=True))
    assert Target.changed == []
    assert result.status == UNKNOWN and result.reason == "read-only: would seal on vault-2"


async def test_a_scenario_that_needs_a_fault_is_unknown_not_failed(tmp_path) -> None:
    result = await _run(Faulty(), _session(tmp_path, read_only=True))
    assert Target.changed == [] and result.faults == []
    assert result.status == UNKNOWN
    assert result.reason == "read-only: would inject the fault unit.nothing on flag"


async def test_an_undeclared_scenario_is_refused_under_read_only(tmp_path) -> None:
    result = await _run(Undeclared(), _session(tmp_path, read_only=True))
    assert Target.ran == [] and result.status == UNKNOWN
    assert "does not declare what it changes" in result.reason


def test_mutate_raises_only_under_read_only(tmp_path) -> None:
    for read_only in (False, True):
        session = _session(tmp_path, read_only)
        assert session.faults is not None
        run = Run(session, session.faults, ScenarioResult("unit.x", "x"), "r1")
        if not read_only:
            run.mutate("write", "kv")  # goes ahead
            assert run.result.checks == []
        else:
            with pytest.raises(ReadOnlyRefused, match="read-only: would write on kv"):
                run.mutate("write", "kv")


async def test_an_all_refused_run_is_unknown_everywhere_never_a_pass(tmp_path) -> None:
    session = _session(tmp_path, read_only=True)
    results = [await _run(s, session) for s in (Terminator(), Observer())]
    assert run_verdict(results) == (UNKNOWN, EXIT_PASS)  # as every unknown run exits
    assert run_verdict(results, strict=True) == ("fail", EXIT_FAIL)
    write_junit(results, tmp_path / "junit.xml")
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    assert xml.failures == 0 and xml.errors == 0 and xml.skipped >= len(results)


def test_every_built_in_scenario_declares_what_it_changes() -> None:
    undeclared = [s.id for s in all_scenarios() if s.mutates is None]
    assert undeclared == []
    refused = {s.id for s in all_scenarios() if read_only_refusal(s)}
    ids = {s.id for s in all_scenarios()}
    for pack in ("vault-instance.", "sessions.", "lab-faults."):
        assert {i for i in ids if i.startswith(pack)} <= refused, pack
    assert {"vault-ha.failover", "vault-ha.load", "vault-ha.backup-restore",
            "vault-ha.split-brain", "vault-ha.audit", "mesh.partition", "smoke.control",
            "smoke.provisioning", "smoke.workflow"} <= refused
    assert {"vault-ha.health", "smoke.config", "smoke.health", "mesh.convergence"}.isdisjoint(
        refused)


def _leaf_commands(parser, path=()) -> list[tuple[tuple[str, ...], Any]]:
    """(command words, parser) of every command that takes no further sub-command."""
    import argparse

    subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    if not subs:
        return [(path, parser)]
    return [leaf for a in subs for name, sub in a.choices.items()
            for leaf in _leaf_commands(sub, (*path, name))]


def test_every_command_accepts_read_only_after_its_name() -> None:
    commands = dict(_leaf_commands(build_parser()))
    assert {("run",), ("lab", "up"), ("verify",), ("agent",), ("tui",)} <= set(commands)
    for words, parser in commands.items():
        assert "--read-only" in parser._option_string_actions, words


def test_run_read_only_makes_the_session_read_only(tmp_path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('name = "x"\n[[nats]]\nname = "c"\n[[nats.nodes]]\nname = "n1"\n'
                      'client_url = "nats://127.0.0.1:4222"\n'
                      'monitor_url = "http://127.0.0.1:8222"\n')
    for argv, expected in ((["run", "smoke"], False), (["run", "smoke", "--read-only"], True),
                           (["--read-only", "run", "smoke"], True)):
        args = build_parser().parse_args(["--config", str(config), *argv])
        inv = _load_inventory(args)
        assert inv.read_only is expected
        assert ConsoleSession(inv, probes=False).read_only is expected


def test_demo_with_read_only_is_one_line_and_exit_2(capsys) -> None:
    assert main(["demo", "--read-only"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["opsconsole: the demo injects faults; --read-only was given"]
