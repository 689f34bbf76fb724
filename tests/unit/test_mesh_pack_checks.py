"""Negative controls for the `mesh` pack's checks: each observation the pack records,
driven with real agents, transports, verifiers and caches (in process, no NATS) in the
healthy state and in a broken one, where it must fail."""

from __future__ import annotations

import json
import time
from typing import Any

import blake3
import pytest

from opsconsole.scenarios.engine import Abort
from opsconsole.systems.mesh.checks import (
    FORGED_SEQ,
    SCALE_TARGETS,
    EntryExpiryWatch,
    ExpiryWatch,
    RendezvousPlan,
    claims_settled,
    coordinators_by_definition,
    failover_found,
    forged_op_payload,
    forgeries,
    lookup_found,
    mesh_state,
    plan_rendezvous,
    registrations,
    rejected_without_effect,
    replay_ignored,
    scale_verdicts,
    shard_assignment,
    shard_by_definition,
)
from opsconsole_lab.mesh import (
    AgentIdentity,
    LookupResult,
    MeshAgent,
    MeshTransport,
    Rejected,
    ReplayCache,
    SignedMessage,
    Verifier,
    shard_of,
)


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Loopback(MeshTransport):
    """Delivers every publish back through its own receive pipeline (no network)."""

    def __init__(self, run: str, **kwargs: Any) -> None:
        super().__init__(run, **kwargs)
        self.sent: list[bytes] = []

    async def _publish(self, subject: str, data: bytes) -> None:
        self.sent.append(data)
        _, _, channel, *target = subject.split(".")
        self.receive(channel, target[0] if target else None, data)  # type: ignore[arg-type]


def hosted(n: int, transport: MeshTransport, seed: str = "u", **kw: Any) -> list[MeshAgent]:
    """``n`` real agents attached to ``transport`` but not started (no background loop)."""
    agents = [MeshAgent(AgentIdentity.from_seed(f"{seed}-{i}".encode()), transport, **kw)
              for i in range(n)]
    for a in agents:
        transport.attach(a.agent_id, a._on_delivery)
    return agents


def beacon(ident: AgentIdentity, seq: int, ttl: float, bye: bool = False) -> bytes:
    body: dict[str, Any] = {"seq": seq, "ttl": ttl}
    if bye:
        body["bye"] = True
    return ident.sign("beacon", json.dumps(body).encode())


# ---- presence: expiry marks a silent agent offline -----------------------------------------


def expiry_setup(beacon_ttl: float) -> tuple[FakeClock, ExpiryWatch, Loopback,
                                             AgentIdentity, list[MeshAgent]]:
    clock = FakeClock(0.0)
    transport = Loopback("unit")
    observers = hosted(3, transport, "obs", presence_ttl=2.0, monotonic=clock)
    silent = AgentIdentity.from_seed(b"silent")
    watch = ExpiryWatch(silent.agent_id, 2.0, clock=clock)
    data = beacon(silent, 1, beacon_ttl)
    transport.receive("presence", None, data)  # what the observers hear
    watch.heard(data)  # what the spy hears
    clock.now = 0.1
    watch.stopping(observers)
    return clock, watch, transport, silent, observers


def test_expiry_passes_when_every_observer_marks_offline_at_the_ttl() -> None:
    clock, watch, *_ = expiry_setup(beacon_ttl=2.0)
    clock.now = 1.0
    status, evidence = watch.observe()
    assert status == "fail" and len(evidence["still_online"]) == 3
    clock.now = 2.05
    status, evidence = watch.observe()
    assert status == "pass", evidence
    assert evidence["ttl_s"] == 2.0 and evidence["online_before_stop"] == 3
    assert evidence["seconds_to_offline"] == 1.95 and evidence["since_last_beacon_s"] == [2.05,
                                                                                          2.05]


def test_expiry_fails_when_the_silent_agent_never_expires() -> None:
    clock, watch, *_ = expiry_setup(beacon_ttl=1000.0)  # a view that keeps it forever
    for t in (1.0, 2.0, 3.0, 0.1 + watch.deadline_s):
        clock.now = t
        status, evidence = watch.observe()
        assert status == "fail" and len(evidence["still_online"]) == 3


def test_expiry_fails_when_it_comes_too_early_and_stays_failed() -> None:
    clock, watch, *_ = expiry_setup(beacon_ttl=0.5)  # offline after 0.5 s instead of 2
    clock.now = 0.6
    status, evidence = watch.observe()
    assert status == "fail" and len(evidence["too_early"]) == 3
    clock.now = 2.1  # a later retry must not turn the early expiry into a pass
    status, evidence = watch.observe()
    assert status == "fail" and len(evidence["too_early"]) == 3


def test_expiry_fails_when_it_comes_too_late() -> None:
    clock, watch, *_ = expiry_setup(beacon_ttl=3.6)
    clock.now = 2.1
    assert watch.observe()[0] == "fail"
    clock.now = 3.7
    status, evidence = watch.observe()
    assert status == "fail" and len(evidence["too_late"]) == 3


def test_expiry_fails_on_a_goodbye_instead_of_a_silent_expiry() -> None:
    clock, watch, transport, silent, _ = expiry_setup(beacon_ttl=2.0)
    transport.receive("presence", None, beacon(silent, 2, 2.0, bye=True))
    clock.now = 0.2
    status, evidence = watch.observe()
    assert status == "fail" and len(evidence["too_early"]) == 3


def test_expiry_fails_when_the_agent_was_not_online_before_the_stop() -> None:
    clock = FakeClock(0.0)
    observers = hosted(2, Loopback("unit"), "obs", presence_ttl=2.0, monotonic=clock)
    silent = AgentIdentity.from_seed(b"silent")
    watch = ExpiryWatch(silent.agent_id, 2.0, clock=clock)
    watch.heard(beacon(silent, 1, 2.0))  # on the wire, but never delivered to the observers
    watch.stopping(observers)
    clock.now = 2.5
    status, evidence = watch.observe()
    assert status == "fail" and len(evidence["not_online_before_stop"]) == 2


def test_expiry_fails_when_no_beacon_of_the_silent_agent_was_heard() -> None:
    clock, _, _, silent, observers = expiry_setup(beacon_ttl=2.0)
    watch = ExpiryWatch(silent.agent_id, 2.0, clock=clock)  # its spy heard nothing
    watch.stopping(observers)
    clock.now = 2.5
    status, evidence = watch.observe()
    assert status == "fail" and "no beacon" in evidence["reason"]


# ---- security: forged messages rejected for their reason, without effect ------------------


def security_setup(verifier: Verifier | None = None) -> tuple[Loopback, list[MeshAgent]]:
    transport = Loopback("unit", verifier=verifier)
    return transport, hosted(3, transport, "sec")


async def test_forgeries_are_rejected_for_their_reason_without_effect() -> None:
    transport, agents = security_setup()
    await agents[0].add_task("genuine")
    for forged in forgeries(agents[0].identity):
        before = mesh_state(transport, agents)
        assert rejected_without_effect(forged.reason, before, transport, agents,
                                       forged.task)[0] == "fail"  # nothing injected yet
        transport.receive("gossip", None, forged.data)
        status, evidence = rejected_without_effect(forged.reason, before, transport, agents,
                                                   forged.task)
        assert status == "pass", (forged.name, evidence)
        assert evidence["rejected_delta"] == {forged.reason: 1}


async def test_the_untampered_forgery_would_have_an_effect_the_check_sees() -> None:
    transport, agents = security_setup()
    task, payload = forged_op_payload(agents[0].agent_id, FORGED_SEQ + 9, "genuine-twin")
    before = mesh_state(transport, agents)
    transport.receive("gossip", None, agents[0].identity.sign("op", payload))
    status, evidence = rejected_without_effect("bad_signature", before, transport, agents, task)
    assert status == "fail"
    assert evidence["rejected_delta"] == {} and len(evidence["applied_by"]) == 2
    assert len(evidence["forged_task_at"]) == 2 and len(evidence["state_changed_at"]) == 2


class AcceptsAnything(Verifier):
    """A broken verifier: checks the layout only (no signature, no key binding)."""

    def verify(self, data: bytes | SignedMessage) -> SignedMessage:
        self.stats.accepted += 1
        return data if isinstance(data, SignedMessage) else SignedMessage.parse(data)


@pytest.mark.parametrize("name", ["a tampered message is rejected",
                                  "key substitution detected"])
async def test_a_forgery_accepted_by_a_broken_verifier_fails_its_check(name: str) -> None:
    transport, agents = security_setup(AcceptsAnything())
    [forged] = [f for f in forgeries(agents[0].identity) if f.name == name]
    before = mesh_state(transport, agents)
    transport.receive("gossip", None, forged.data)
    status, evidence = rejected_without_effect(forged.reason, before, transport, agents,
                                               forged.task)
    assert status == "fail" and evidence["rejected_delta"] == {}
    assert evidence["applied_by"] and evidence["forged_task_at"]


async def test_a_forgery_rejected_for_another_reason_or_twice_fails_its_check() -> None:
    transport, agents = security_setup()
    tampered, truncated, substituted = forgeries(agents[0].identity)
    before = mesh_state(transport, agents)
    transport.receive("gossip", None, tampered.data)  # bad_signature, not key_substitution
    status, evidence = rejected_without_effect(substituted.reason, before, transport, agents,
                                               substituted.task)
    assert status == "fail" and evidence["rejected_delta"] == {"bad_signature": 1}
    before = mesh_state(transport, agents)
    transport.receive("gossip", None, truncated.data)
    transport.receive("gossip", None, truncated.data)
    status, evidence = rejected_without_effect(truncated.reason, before, transport, agents,
                                               truncated.task)
    assert status == "fail" and evidence["rejected_delta"] == {"malformed": 2}


async def test_the_substituted_key_signature_is_valid_so_only_the_binding_catches_it() -> None:
    *_, substituted = forgeries(AgentIdentity.from_seed(b"victim"))
    msg = SignedMessage.parse(substituted.data)
    assert msg.agent_id == AgentIdentity.from_seed(b"victim").agent_id
    with pytest.raises(Rejected) as info:
        msg.verify_signature()
    assert info.value.reason == "key_substitution"


# ---- security: replays and the live replay cache -------------------------------------------


async def genuine_on_the_wire(transport: Loopback, agents: list[MeshAgent]) -> bytes:
    """A genuine op, published (and so accepted and cached); its wire bytes."""
    await agents[0].add_task("genuine, to replay")
    return transport.sent[-1]


async def test_replay_is_ignored_while_the_live_cache_holds_it() -> None:
    transport, agents = security_setup(Verifier(replay=ReplayCache(ttl=5.0)))
    data = await genuine_on_the_wire(transport, agents)
    mid = SignedMessage.parse(data).message_id
    before = mesh_state(transport, agents)
    transport.receive("gossip", None, data)
    status, evidence = replay_ignored(before, transport, agents, mid)
    assert status == "pass" and evidence["held_by_live_cache"], evidence


async def test_replay_through_a_cache_that_forgets_at_once_fails() -> None:
    transport, agents = security_setup(Verifier(replay=ReplayCache(ttl=0.0)))
    data = await genuine_on_the_wire(transport, agents)
    before = mesh_state(transport, agents)
    transport.receive("gossip", None, data)
    status, evidence = replay_ignored(before, transport, agents,
                                      SignedMessage.parse(data).message_id)
    assert status == "fail" and not evidence["held_by_live_cache"]
    assert evidence["rejected_delta"] == {} and len(evidence["duplicate_at"]) == 2


def test_live_cache_entry_expires_at_its_ttl() -> None:
    clock = FakeClock(0.0)
    cache = ReplayCache(ttl=5.0, clock=clock)
    assert cache.check_and_add(b"m")
    watch = EntryExpiryWatch(cache, b"m", added_at=0.0)
    clock.now = 1.0
    status, evidence = watch.observe()
    assert status == "fail" and evidence["reason"] == "still in the live cache"
    assert watch.deadline_s == pytest.approx(5.0 + 1.0 - 1.0 + 0.5)  # ttl + late - age
    clock.now = 5.0
    status, evidence = watch.observe()
    assert status == "pass" and evidence == {"ttl_s": 5.0, "gone_after_s": 5.0, "entries": 0}


class NeverForgets(ReplayCache):
    def _purge(self, now: float) -> None:
        return None


class HalfLife(ReplayCache):
    """Drops entries at half the TTL it reports."""

    def _purge(self, now: float) -> None:
        super()._purge(now + self.ttl / 2)


def test_a_cache_that_never_expires_fails_the_expiry_check() -> None:
    clock = FakeClock(0.0)
    cache = NeverForgets(ttl=5.0, clock=clock)
    cache.check_and_add(b"m")
    watch = EntryExpiryWatch(cache, b"m", added_at=0.0)
    clock.now = 7.0
    status, evidence = watch.observe()
    assert status == "fail" and evidence["reason"] == "still in the live cache"


def test_a_cache_that_expires_early_fails_even_when_retried_later() -> None:
    clock = FakeClock(0.0)
    cache = HalfLife(ttl=5.0, clock=clock)
    cache.check_and_add(b"m")
    watch = EntryExpiryWatch(cache, b"m", added_at=0.0)
    clock.now = 2.6
    assert watch.observe() == ("fail", {"ttl_s": 5.0, "gone_after_s": 2.6, "entries": 0})
    clock.now = 6.0
    assert watch.observe()[0] == "fail"


async def test_a_replay_after_the_cache_ttl_is_stale_unless_the_age_window_is_off() -> None:
    for max_age, expect in ((5.0, "pass"), (None, "fail")):
        clock = FakeClock(0.0)
        wall = [0]
        verifier = Verifier(replay=ReplayCache(ttl=5.0, clock=clock), max_age_s=max_age,
                            wall_clock_ns=lambda w=wall: time.time_ns() + w[0])
        transport, agents = security_setup(verifier)
        data = await genuine_on_the_wire(transport, agents)
        clock.now, wall[0] = 6.0, 6_000_000_000  # past the cache TTL and the age window
        before = mesh_state(transport, agents)
        transport.receive("gossip", None, data)
        status, evidence = rejected_without_effect("stale", before, transport, agents)
        assert status == expect, (max_age, evidence)
        if max_age is None:  # accepted again: counted as a duplicate on both other agents
            assert evidence["rejected_delta"] == {} and len(evidence["duplicate_at"]) == 2


# ---- rendezvous: shards from the definition, registrations, the plan ---------------------


def test_shard_definition_matches_the_module_docstring_and_the_pinned_vectors() -> None:
    for agent_id in ("00" * 32, "ff" * 32, AgentIdentity.from_seed(b"x").agent_id):
        digest = blake3.blake3(b"saorsa-rendezvous" + bytes.fromhex(agent_id)).digest()
        assert shard_by_definition(agent_id) == int.from_bytes(digest, "big") & 0xFFFF
    agents = hosted(4, Loopback("unit"), "shard")
    status, evidence = shard_assignment(agents)
    assert status == "pass" and evidence["shards"] == [shard_of(a.agent_id) for a in agents]


def _first_two_bytes_little_endian(agent_id: str) -> int:
    return int.from_bytes(blake3.blake3(bytes.fromhex(agent_id)).digest()[:2], "little")


@pytest.mark.parametrize("wrong", [
    _first_two_bytes_little_endian,  # another byte order, no domain
    lambda a: int.from_bytes(blake3.blake3(b"saorsa-rendezvous" + a.encode()).digest(), "big")
    & 0xFFFF,  # the hex text hashed instead of the raw id
    lambda a: shard_of(a) ^ 1])
def test_a_wrong_shard_function_fails_the_shard_check(wrong: Any) -> None:
    status, evidence = shard_assignment(hosted(3, Loopback("unit"), "shard"), shard_fn=wrong)
    assert status == "fail" and evidence["wrong_vectors"]


class OffByOneShard(MeshAgent):
    @property
    def shard(self) -> int:  # type: ignore[override]
        return shard_of(self.agent_id) ^ 1


def test_an_agent_using_a_wrong_shard_fails_the_shard_check() -> None:
    transport = Loopback("unit")
    wrong = OffByOneShard(AgentIdentity.from_seed(b"w"), transport)
    agents = [*hosted(2, transport, "shard"), wrong]
    status, evidence = shard_assignment(agents)
    assert status == "fail" and list(evidence["wrong_agents"]) == [agents[2].agent_id[:12]]


class LowestCoordinators(MeshAgent):
    """Registers with the two lowest HRW scores instead of the two highest."""

    def my_coordinators(self) -> list[str]:
        best = super().my_coordinators()
        rest = sorted(self.candidate_pool() - set(best))
        return rest[:2]


async def registered_mesh(kinds: list[type[MeshAgent]]) -> list[MeshAgent]:
    transport = Loopback("unit")
    agents = [kind(AgentIdentity.from_seed(f"rdv-{i}".encode()), transport)
              for i, kind in enumerate(kinds)]
    for a in agents:
        transport.attach(a.agent_id, a._on_delivery)
    for a in agents:  # everyone heard everyone's beacon
        for b in agents:
            if a is not b:
                a.presence.observe(b.agent_id)
    for a in agents:
        await a.register()
    return agents


async def test_registrations_match_the_definition() -> None:
    agents = await registered_mesh([MeshAgent] * 6)
    assert registrations(agents) == ("pass", {"agents": 6, "wrong": {}})


async def test_an_agent_registering_with_the_wrong_coordinators_fails() -> None:
    agents = await registered_mesh([MeshAgent] * 5 + [LowestCoordinators])
    status, evidence = registrations(agents)
    assert status == "fail" and list(evidence["wrong"]) == [agents[5].agent_id[:12]]


async def test_an_agent_announcing_a_wrong_shard_fails_the_registration_check() -> None:
    agents = await registered_mesh([MeshAgent] * 5 + [OffByOneShard])
    status, evidence = registrations(agents)
    assert status == "fail" and agents[5].agent_id[:12] in evidence["wrong"]


def test_plan_always_finds_a_third_party_target_and_asker() -> None:
    seeds = iter(range(10**6))
    for _ in range(200):
        plan = plan_rendezvous(6, generate=lambda: AgentIdentity.from_seed(
            str(next(seeds, -1)).encode()))
        ids = [i.agent_id for i in plan.identities]
        assert [plan.primary, plan.backup] == coordinators_by_definition(plan.target, ids)
        assert len({plan.target, plan.primary, plan.backup, plan.asker}) == 4


def test_plan_aborts_saying_what_is_missing_when_it_cannot_exist() -> None:
    with pytest.raises(Abort, match="no agent had a primary and a backup coordinator"):
        plan_rendezvous(3, attempts=5)


def _plan() -> RendezvousPlan:
    ids = [AgentIdentity.from_seed(f"p{i}".encode()) for i in range(6)]
    return plan_rendezvous(6, generate=iter(ids * 50).__next__)


def test_lookup_and_failover_verdicts() -> None:
    plan = _plan()
    record = {"agent_id": plan.target, "shard": shard_by_definition(plan.target)}
    assert lookup_found(LookupResult(True, record, plan.primary, (plan.primary,)), plan)[0] \
        == "pass"
    assert lookup_found(LookupResult(True, record, plan.backup, (plan.backup,)), plan)[0] \
        == "fail"
    other_shard = {**record, "shard": (record["shard"] + 1) % 0x10000}
    assert lookup_found(LookupResult(True, other_shard, plan.primary, (plan.primary,)),
                        plan)[0] == "fail"
    both = (plan.primary, plan.backup)
    assert failover_found(LookupResult(True, record, plan.backup, both), plan)[0] == "pass"
    assert failover_found(LookupResult(True, record, plan.primary, (plan.primary,)),
                          plan)[0] == "fail"
    assert failover_found(LookupResult(False, None, None, both), plan)[0] == "fail"


# ---- convergence: one winner per contested task, everywhere ------------------------------


def test_claims_settled_needs_the_same_winner_on_every_replica() -> None:
    transport = Loopback("unit")
    a, b = hosted(2, transport, "claim")
    add = a.tasks.add({"title": "x"})
    b.tasks.apply(add)
    claim_a, claim_b = a.tasks.claim(add.task), b.tasks.claim(add.task)
    assert claim_a and claim_b
    status, evidence = claims_settled([a, b], [add.task])
    assert status == "fail" and evidence["disagreeing"] == [add.task]
    a.tasks.apply(claim_b)
    b.tasks.apply(claim_a)
    status, evidence = claims_settled([a, b], [add.task])
    assert status == "pass" and len(evidence["winners"][add.task]) == 1
    assert claims_settled([a, b], ["no such task"])[0] == "fail"


# ---- scale: no pass on figures nobody measured --------------------------------------------


def _scale(workers_ran: int, **kw: Any) -> Any:
    from opsconsole.systems.mesh.scale_coordinator import ScaleResult, WorkerSummary

    per_worker = [WorkerSummary(f"w{i}", agents=50, agents_started=50, phase="done",
                                load_s=60.0 if i < workers_ran else 0.0,
                                lost="" if i < workers_ran else "no report for 30 s")
                  for i in range(2)]
    figures = dict(p50_ms=1.0, p95_ms=3.0, p99_ms=5.0, throughput_msgs=999.0,
                   deliveries_per_s=98_000.0, mem_mb_per_agent=1.2,
                   bandwidth_kbps_per_agent=13.0, connection_success_rate=1.0,
                   convergence_seconds=0.3, agents=100, workers=workers_ran, converged=True)
    return ScaleResult(**{**figures, **kw}, per_worker=per_worker)


def test_scale_verdicts_pass_on_a_full_run() -> None:
    verdicts = dict(scale_verdicts(_scale(2), workers=2))
    assert all(status == "pass" for status, _ in verdicts.values()), verdicts
    assert len(verdicts) == 3 + 5


def test_scale_verdicts_fail_when_a_worker_never_reported_its_load() -> None:
    verdicts = dict(scale_verdicts(_scale(1), workers=2))
    status, evidence = verdicts["scale: every worker ran the load and reported it"]
    assert status == "fail" and evidence["lost"] == {"w1": "no report for 30 s"}
    # with no worker reporting, the zeros (bandwidth, throughput) must not pass a target
    nothing = _scale(0, bandwidth_kbps_per_agent=0.0, throughput_msgs=0.0)
    verdicts = dict(scale_verdicts(nothing, workers=2))
    assert verdicts["scale: bandwidth_kbps_per_agent < 100"] == (
        "fail", {"value": 0.0, "reason": "no worker reported its load"})
    assert all(status == "fail" for name, (status, _) in verdicts.items()
               if name.split()[1] in SCALE_TARGETS)
