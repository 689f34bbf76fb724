"""vault-ha.load's safeguard: the run aborts once the cluster had no leader for 5 s."""

from __future__ import annotations

from types import SimpleNamespace

from opsconsole.core.state import State
from opsconsole.systems.vault.events import VaultNodeSampled
from opsconsole.systems.vault.packs.vault_ha_load import Load, leader_present


def _sample(state: State, ts: float, leader: str | None) -> None:
    for name in ("vault-1", "vault-2", "vault-3"):
        up = leader is not None
        state.apply(VaultNodeSampled(ts=ts, name=name, reachable=up, initialized=True,
                                     sealed=False, standby=name != leader, leader=name == leader,
                                     voter=True, reason="" if up else "connection refused"))


async def test_no_leader_for_five_seconds_trips_it_and_a_short_election_does_not() -> None:
    now = [1000.0]
    guard = leader_present(5.0, clock=lambda: now[0])
    run = SimpleNamespace(state=State())
    _sample(run.state, now[0], "vault-1")
    assert (await guard.fn(run))[0] == "pass"
    for t in (1001.0, 1003.0):  # an election of ~3 s: still within the limit
        now[0] = t
        _sample(run.state, t, None)
        assert (await guard.fn(run))[0] == "pass", t
    now[0] = 1004.0
    _sample(run.state, 1004.0, "vault-2")
    assert (await guard.fn(run))[0] == "pass"
    for t in (1005.0, 1007.0, 1008.9):
        now[0] = t
        _sample(run.state, t, None)
        assert (await guard.fn(run))[0] == "pass", t
    now[0] = 1009.1
    _sample(run.state, 1009.1, None)
    status, evidence = await guard.fn(run)
    assert status == "fail" and evidence["leaderless_s"] >= 5.0 and evidence["leaders"] == []


async def test_silent_probes_are_unknown_not_a_leader() -> None:
    now = [2000.0]
    guard = leader_present(5.0, clock=lambda: now[0])
    run = SimpleNamespace(state=State())
    _sample(run.state, 1980.0, "vault-1")  # stale: 20 s old
    status, evidence = await guard.fn(run)
    assert status == "unknown" and "no Vault probe sample" in evidence["reason"]


def test_the_load_scenario_is_guarded_by_it() -> None:
    names = [g.name for g in Load().safeguards()]
    assert names == ["the cluster has a leader (abort after 5 s without)"]
