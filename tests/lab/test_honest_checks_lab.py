"""Negative controls on the real lab for vault-ha checks that used to pass after a wait:
the alert checks (a sealed node) and vault-ha.load's safeguard (no leader for 5 s)."""

from __future__ import annotations

import asyncio

import pytest

from opsconsole.config import Inventory, LabSpec
from opsconsole.faults.ledger import FaultLedger
from opsconsole.lab import Lab
from opsconsole.scenarios.engine import Run, ScenarioResult, run_scenario
from opsconsole.session import ConsoleSession
from opsconsole.systems.vault.packs.vault_ha_alerts import (
    _firing,
    clear_before_fault,
    resolved_after_unseal,
)
from opsconsole.systems.vault.packs.vault_ha_load import Load

from ..helpers import async_wait_until


@pytest.fixture
async def lab_session(lab: Lab, tmp_path):
    """A console session on the lab with its probes (and so the live alert rules)."""
    session = ConsoleSession(Inventory(name="lab", lab=LabSpec()),
                             lab_state_dir=str(lab.dir.root), start_lab=False, canaries=False,
                             ledger=FaultLedger(tmp_path / "ledger.jsonl"))
    await session.start()
    try:
        yield session
    finally:
        await session.stop()


def _run(session: ConsoleSession) -> Run:
    assert session.faults is not None
    return Run(session, session.faults, ScenarioResult("unit", "negative control"), "nc")


async def _leader_known(session: ConsoleSession) -> None:
    await async_wait_until(lambda: session.state.vault.leader is not None, 60,
                           "a Vault leader in the console state")


async def test_alert_checks_fail_while_a_standby_is_sealed(lab_session) -> None:
    run = _run(lab_session)
    await _leader_known(lab_session)

    async def clear() -> bool:
        return (await clear_before_fault(run))[0] == "pass"

    await async_wait_until(clear, 30, "the positive control: no alert, every node unsealed")
    victim = next(n for n, v in lab_session.state.vault.nodes.items()
                  if v.reachable and not v.leader and not v.sealed)
    assert lab_session.faults is not None
    rec = await lab_session.faults.inject("vault.seal", victim)
    try:
        status, evidence = await clear_before_fault(run)
        assert status == "fail" and evidence["unsealed"][victim] == 0, evidence
        await async_wait_until(lambda: _firing(run, "VaultSealed", victim), 30,
                               f"VaultSealed to fire for {victim}")
        status, evidence = await resolved_after_unseal(run, victim)
        assert status == "fail" and evidence["firing"] and evidence["unsealed"] is False
    finally:
        await lab_session.faults.heal(rec)

    async def resolved() -> bool:
        return (await resolved_after_unseal(run, victim))[0] == "pass"

    await async_wait_until(resolved, 60, f"VaultSealed to resolve for {victim}")


async def test_the_load_aborts_when_the_cluster_has_no_leader_for_5_s(lab: Lab,
                                                                       lab_session) -> None:
    """Pause the leader and one standby: the last node cannot elect, so the safeguard
    must stop the load long before its 60 s, and the rollback heals the pauses."""
    await _leader_known(lab_session)
    assert lab_session.faults is not None
    load = Load()
    load.configure(rate=50.0, duration=60.0, users=4)
    task = asyncio.create_task(run_scenario(load, lab_session, lab_session.faults,
                                            run_id="safeguard-nc"))
    await async_wait_until(lambda: lab_session.state.load is not None
                           and lab_session.state.load.scenario == "vault-ha.load"
                           and lab_session.state.load.count > 0, 60, "the load to be running")
    leader = lab_session.state.vault.leader
    assert leader is not None
    standby = next(n for n in lab_session.state.vault.nodes if n != leader)
    for node in (leader, standby):
        await lab_session.faults.inject("process.pause", node, run_id="safeguard-nc")
    result = await asyncio.wait_for(task, 120)
    assert result.status == "fail", result.reason
    assert "safeguard 'the cluster has a leader (abort after 5 s without)' tripped" \
        in result.reason
    guard = next(c for c in result.checks if c.name.startswith("safeguard: "))
    assert guard.status == "fail" and guard.evidence["leaderless_s"] >= 5
    assert "p99_ms" not in result.metrics  # stopped before the load finished
    open_faults = [r for r in lab_session.faults.ledger.open_records()
                   if r.run_id == "safeguard-nc"]
    assert open_faults == []  # the rollback resumed both nodes
    await _leader_known(lab_session)
