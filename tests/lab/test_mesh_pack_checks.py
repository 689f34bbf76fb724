"""Negative controls for the `mesh` pack's checks on a real nats-server: real agents and a
spy on the wire, healthy and broken (an agent that never goes silent, a verifier that
accepts forgeries, a replay cache that never forgets, an agent registering with the wrong
coordinators); each broken case must fail the very check the pack records."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import nats
import pytest

from opsconsole.scenarios.engine import Check, Outcome
from opsconsole.systems.mesh.checks import (
    EntryExpiryWatch,
    ExpiryWatch,
    as_check,
    beacons_seen,
    forgeries,
    mesh_state,
    registrations,
    rejected_without_effect,
)
from opsconsole_lab.mesh import (
    AgentIdentity,
    MeshAgent,
    NatsTransport,
    ReplayCache,
    SignedMessage,
    Subjects,
    Verifier,
    server_has_seen,
)
from opsconsole_lab.mesh.local import LocalMesh

from ..helpers import async_wait_until


async def settle(check: Check) -> Outcome:
    """Evaluate ``check`` like the engine does: retry until it passes or ``within`` ends."""
    deadline = time.monotonic() + check.within
    while True:
        status, evidence = await check.fn(None)  # type: ignore[arg-type]
        if status == "pass" or time.monotonic() >= deadline:
            return status, evidence
        await asyncio.sleep(0.05)


@pytest.fixture
async def mesh() -> AsyncIterator[LocalMesh]:
    m = LocalMesh()
    try:
        yield m
    finally:
        await m.close()


async def spy_on(url: str, subject: str, cb: Any) -> Any:
    nc = await nats.connect(url)

    async def handler(msg: Any) -> None:
        cb(msg.data)

    await nc.subscribe(subject, cb=handler)
    await server_has_seen(nc)
    return nc


@pytest.mark.parametrize("stop", [True, False], ids=["silent", "never-silent"])
async def test_presence_expiry_check_on_the_wire(nats_url: str, mesh: LocalMesh,
                                                 stop: bool) -> None:
    ring = [AgentIdentity.generate() for _ in range(4)]
    watch = ExpiryWatch(ring[1].agent_id, 2.0)
    spy = await spy_on(nats_url, Subjects(mesh.run).presence, watch.heard)
    try:
        agents = await mesh.add(nats_url, 4, identities=ring, presence_ttl=2.0,
                                warmup_beacons=(0.5, 0.5))
        await async_wait_until(lambda: beacons_seen(agents)[0] == "pass", 5, "beacons")
        watch.stopping([a for a in agents if a is not agents[1]])
        if stop:
            await agents[1].stop(graceful=False)
        started = time.monotonic()
        status, evidence = await settle(as_check("expiry", watch.observe, watch.deadline_s))
    finally:
        await spy.close()
    if stop:
        assert status == "pass", evidence
        assert 1.0 < evidence["seconds_to_offline"] <= 3.0
        assert 1.75 <= evidence["since_last_beacon_s"][0] <= 3.0
    else:  # it keeps beaconing: the check must fail at its deadline, naming who still sees it
        assert status == "fail" and len(evidence["still_online"]) == 3, evidence
        assert time.monotonic() - started >= watch.deadline_s


class AcceptsAnything(Verifier):
    """A broken verifier: checks the layout only (no signature, no key binding)."""

    def verify(self, data: bytes | SignedMessage) -> SignedMessage:
        self.stats.accepted += 1
        return data if isinstance(data, SignedMessage) else SignedMessage.parse(data)


@pytest.mark.parametrize("broken", [False, True], ids=["verifier", "accepts-anything"])
async def test_forgery_checks_on_the_wire(nats_url: str, mesh: LocalMesh,
                                          broken: bool) -> None:
    agents = await mesh.add(nats_url, 3, verifier=AcceptsAnything() if broken else None)
    transport = mesh.transports[0]
    spy = await nats.connect(nats_url)
    try:
        results = {}
        for forged in forgeries(agents[0].identity):
            before = mesh_state(transport, agents)
            await spy.publish(transport.subjects.gossip, forged.data)
            await spy.flush()
            results[forged.reason] = await settle(as_check(
                forged.name, lambda f=forged, b=before: rejected_without_effect(
                    f.reason, b, transport, agents, f.task), within=3))
    finally:
        await spy.close()
    if not broken:
        assert all(status == "pass" for status, _ in results.values()), results
    else:  # tampered and substituted ops applied: both checks fail and say where
        for reason in ("bad_signature", "key_substitution"):
            status, evidence = results[reason]
            assert status == "fail" and len(evidence["applied_by"]) == 2, evidence
        assert results["malformed"][0] == "pass"  # the layout check still catches it


class NeverForgets(ReplayCache):
    def _purge(self, now: float) -> None:
        return None


@pytest.mark.parametrize("cache", [ReplayCache, NeverForgets])
async def test_live_replay_cache_expiry_check(nats_url: str, mesh: LocalMesh,
                                              cache: type[ReplayCache]) -> None:
    verifier = Verifier(replay=cache(ttl=2.0), max_age_s=2.0)
    agents = await mesh.add(nats_url, 2, verifier=verifier)
    transport = mesh.transports[0]
    heard: list[tuple[float, bytes]] = []
    spy = await spy_on(nats_url, transport.subjects.gossip,
                       lambda data: heard.append((time.monotonic(), data)))
    try:
        task = await agents[0].add_task("genuine")
        await async_wait_until(lambda: heard and agents[1].tasks.present(task), 5, "the op")
        added_at, data = heard[0]
        mid = SignedMessage.parse(data).message_id
        assert mid in transport.verifier.replay
        watch = EntryExpiryWatch(transport.verifier.replay, mid, added_at)
        status, evidence = await settle(as_check("expiry", watch.observe, watch.deadline_s))
        before = mesh_state(transport, agents)
        await spy.publish(transport.subjects.gossip, data)
        await spy.flush()
        late = await settle(as_check("stale", lambda: rejected_without_effect(
            "stale", before, transport, agents), within=3))
    finally:
        await spy.close()
    if cache is ReplayCache:
        assert status == "pass" and 1.75 <= evidence["gone_after_s"] <= 3.0, evidence
        assert late[0] == "pass", late
    else:  # still held: the expiry check fails; the late replay is caught as a replay
        assert status == "fail" and evidence["reason"] == "still in the live cache"
        assert late[0] == "fail" and late[1]["rejected_delta"] == {"replay": 1}


class LowestCoordinators(MeshAgent):
    """Registers with the two lowest HRW scores instead of the two highest."""

    def my_coordinators(self) -> list[str]:
        best = super().my_coordinators()
        return sorted(self.candidate_pool() - set(best))[:2]


@pytest.mark.parametrize("kind", [MeshAgent, LowestCoordinators])
async def test_registration_check_on_the_wire(nats_url: str, kind: type[MeshAgent]) -> None:
    nc = await nats.connect(nats_url)
    transport = NatsTransport(nc, f"rdv{int(time.time() * 1000) % 10**6}")
    await transport.start()
    agents = [MeshAgent(AgentIdentity.generate(), transport, warmup_beacons=(0.3, 0.3))
              for _ in range(5)]
    agents.append(kind(AgentIdentity.generate(), transport, warmup_beacons=(0.3, 0.3)))
    try:
        await asyncio.gather(*(a.start() for a in agents))
        await async_wait_until(lambda: all(a.registered_with for a in agents), 10,
                               "every agent's first registration")
        status, evidence = await settle(as_check("registrations",
                                                 lambda: registrations(agents), within=3))
    finally:
        await asyncio.gather(*(a.stop() for a in agents))
        await transport.close()
        await nc.close()
    if kind is MeshAgent:
        assert status == "pass", evidence
    else:
        assert status == "fail" and list(evidence["wrong"]) == [agents[5].agent_id[:12]]
