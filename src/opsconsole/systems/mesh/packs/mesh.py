"""The `mesh` pack: CRDT task lists gossiped by signed agents over the NATS cluster.

The agents are the lab's reference (:mod:`opsconsole_lab.mesh`), hosted in this process
on the inventory's central NATS nodes. `partition` cuts a real gossip path: one group
talks to one NATS node and that node's routes are cut in the fault proxy; the
asymmetric case (a one-way cut TCP routes cannot express) uses the transport's filter
and says so. `scale` runs on worker processes (:mod:`opsconsole.systems.mesh.scale_coordinator`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from pydantic import PositiveFloat, PositiveInt

from opsconsole_lab.mesh import (
    AgentIdentity,
    MeshAgent,
    ReplayCache,
    Subjects,
    Verifier,
    foaf_query,
    server_has_seen,
)
from opsconsole_lab.mesh.local import LocalMesh

from ....scenarios.engine import OK_STATUSES, Abort, Run, Scenario, ScenarioOptions, option, outcome
from ....targets.nats import NatsCredentials, NatsEndpoint, connect_options
from ...nats.checks import nats_cluster_healthy
from .. import wire as mesh_wire
from ..checks import (
    SCALE_TARGETS,
    EntryExpiryWatch,
    ExpiryWatch,
    as_check,
    beacons_seen,
    claims_settled,
    failover_found,
    forgeries,
    genuine_accepted,
    lookup_found,
    mesh_state,
    plan_rendezvous,
    registrations,
    rejected_without_effect,
    replay_ignored,
    scale_verdicts,
    shard_assignment,
)

CONVERGE_S = 10.0


def _endpoints(run: Run) -> list[NatsEndpoint]:
    eps = [ep for c in run.inventory.nats for ep in c.endpoints()]
    if not eps:
        raise Abort("the inventory has no [[nats]] nodes for the gossip transport")
    return eps


def _urls(run: Run) -> list[str]:
    """The NATS URLs the hosted agents use (their connection options: :func:`_mesh`)."""
    return [ep.url for ep in _endpoints(run)]


class MeshScenario(Scenario):
    needs_lab = False  # any NATS cluster; partition needs the lab's fault proxy
    #: the agents live in this process and gossip over core NATS: nothing is stored on
    #: the target (no JetStream), so only the partition's fault changes it
    mutates = ()

    def steady_state(self):
        return [nats_cluster_healthy()]

    async def method(self, run: Run) -> None:
        first = _endpoints(run)[0]
        self.mesh = LocalMesh(connect_options=connect_options(first.auth, first.url, first.where)
                              if first.auth is not None else None)
        try:
            await self.steps(run, self.mesh)
        finally:
            await self.mesh.close()

    async def steps(self, run: Run, mesh: LocalMesh) -> None:
        raise NotImplementedError


async def _converge(run: Run, what: str, cond: Callable[[], bool], within: float) -> float:
    started = time.monotonic()
    await run.wait_until(what, cond, within, 0.05)
    return time.monotonic() - started


class Convergence(MeshScenario):
    id = "mesh.convergence"
    title = "10 agents, concurrent add/claim/update/complete: identical state, LWW, order"

    async def steps(self, run: Run, mesh: LocalMesh) -> None:
        urls = _urls(run)
        agents: list[MeshAgent] = []
        for i, url in enumerate(urls):  # spread over every central node
            agents += await mesh.add(url, 10 // len(urls) + (i < 10 % len(urls)))
        started = time.monotonic()
        added = await asyncio.gather(*(a.add_task(f"t{i}.{k}") for i, a in enumerate(agents)
                                       for k in range(3)))
        await _converge(run, "30 concurrent adds everywhere",
                        lambda: mesh.converged(agents, 30), 30)
        await run.record("convergence: concurrent adds, identical state on all, no duplicates",
                         outcome(all(a.snapshot() == agents[0].snapshot() for a in agents)
                                 and len({t["id"] for t in agents[0].snapshot()}) == 30,
                                 agents=len(agents), tasks=len(agents[0].snapshot())))
        contested = added[:5]
        await asyncio.gather(*(a.claim(t) for a in agents for t in contested))
        await _converge(run, "concurrent claims", lambda: mesh.converged(agents), 30)
        await run.record("convergence: concurrent claims, one winner per task everywhere",
                         claims_settled(agents, contested))
        for i, a in enumerate(agents):
            await a.update(added[10], notes=f"by agent {i}")
            await asyncio.sleep(0.001)  # strictly increasing timestamps: the last must win
        await _converge(run, "concurrent updates", lambda: mesh.converged(agents), 30)
        notes = sorted({str(({t["id"]: t for t in a.snapshot()}.get(added[10]) or {})
                            .get("meta", {}).get("notes")) for a in agents})
        await run.record("convergence: LWW — the latest update wins on every replica",
                         outcome(notes == [f"by agent {len(agents) - 1}"], notes=notes))
        await asyncio.gather(agents[3].complete(added[20]), agents[4].remove_task(added[21]),
                             agents[5].move(added[29], after=added[0]))
        await _converge(run, "complete, remove and move", lambda: mesh.converged(agents, 29),
                        30)
        order = [t["id"] for t in agents[7].snapshot()]
        final = {t["id"]: t for t in agents[7].snapshot()}
        moved = (added[29] in order and added[0] in order
                 and order.index(added[29]) == order.index(added[0]) + 1)
        same = sum([t["id"] for t in a.snapshot()] == order for a in agents)
        done = final.get(added[20], {}).get("state")
        await run.record("convergence: complete/remove/move, consistent ordering", outcome(
            done == "done" and added[21] not in final and moved and same == len(agents),
            completed=done, removed=added[21] not in final, moved_after_target=moved,
            same_order_on=same, agents=len(agents)))
        took = time.monotonic() - started
        run.metric("convergence_seconds", took, "s")
        await run.record("convergence: convergence_seconds < 10", outcome(
            took < CONVERGE_S, seconds=round(took, 2)))


class Partition(MeshScenario):
    id = "mesh.partition"
    title = "3 + 3 agents split by a real route cut, conflicting ops, heal, converge; " \
            "asymmetric cuts; repeated cycles; no lost ops"
    needs_lab = True
    mutates = ("cut every route of a central NATS node (fault link.cut)",)

    async def steps(self, run: Run, mesh: LocalMesh) -> None:
        urls = _urls(run)
        left = await mesh.add(urls[0], 3)
        right = await mesh.add(urls[1], 3)
        everyone = left + right
        shared = [await left[0].add_task(f"shared-{k}") for k in range(3)]
        await run.wait_until("shared tasks", lambda: mesh.converged(everyone, 3), 30)
        isolated = str(run.inventory.nats[0].nodes[0].name)
        fault = await run.inject("link.cut", isolated)  # every route of that node
        await left[0].update(shared[0], title="left")
        await left[1].remove_task(shared[1])
        await asyncio.sleep(0.01)
        await right[0].update(shared[0], title="right")
        await right[1].update(shared[1], notes="edited concurrently")
        new_left = [await a.add_task(f"left {i}") for i, a in enumerate(left)]
        new_right = [await a.add_task(f"right {i}") for i, a in enumerate(right)]
        await run.wait_until("each side to converge on its own",
                             lambda: mesh.converged(left) and mesh.converged(right), 30)
        leaked = sum(a.tasks.present(t) for a in left for t in new_right) + sum(
            a.tasks.present(t) for a in right for t in new_left)
        await run.record("partition: each side works alone during a real route cut",
                         outcome(leaked == 0 and left[0].digest() != right[0].digest(),
                                 cut=isolated, crossed_the_cut=leaked))
        await run.heal(fault)
        healed = time.monotonic()
        await run.wait_until("convergence after the heal",
                             lambda: mesh.converged(everyone, 3 - 1 + 6), 60)
        run.metric("convergence_seconds", time.monotonic() - healed, "s")
        views = [{t["id"]: t for t in a.snapshot()} for a in everyone]
        view = views[0]
        lost = sorted({t for v in views for t in new_left + new_right if t not in v})
        await run.record("partition: no lost ops after healing", outcome(
            not lost, tasks=len(view), lost=lost))
        titles = sorted({str(v.get(shared[0], {}).get("meta", {}).get("title")) for v in views})
        removed = sum(shared[1] not in v for v in views)
        await run.record("partition: conflicts resolved the same everywhere (LWW, add-wins)",
                         outcome(titles == ["right"] and removed == len(views),
                                 titles=titles, removed_on=removed, agents=len(views)))
        secs = run.result.metrics["convergence_seconds"]
        await run.record("partition: convergence_seconds after heal < 30",
                         outcome(secs < 30, seconds=round(secs, 2)))
        expected = len(view)
        for cycle in range(3):  # asymmetric: the left side stops hearing, still speaks
            cut = mesh.transports[0].block((a.agent_id for a in left), direction="in")
            mine = await left[0].add_task(f"deaf-{cycle}")
            theirs = await right[0].add_task(f"other-{cycle}")
            expected += 2
            await run.wait_until("the deaf side to still be heard",
                                 lambda m=mine: all(a.tasks.present(m) for a in right), 30)
            deaf = not any(a.tasks.present(theirs) for a in left)
            mesh.transports[0].unblock(cut)
            await run.wait_until(f"convergence after asymmetric cycle {cycle}",
                                 lambda n=expected: mesh.converged(everyone, n), 30)
            if not deaf:
                break
        await run.record("partition: asymmetric cut (transport filter), 3 repeated cycles, "
                         "converged each time", outcome(deaf and cycle == 2 and mesh.converged(
                             everyone, expected), cycles=cycle + 1, deaf=deaf, tasks=expected))


PRESENCE_TTL_S = 2.0


class Presence(MeshScenario):
    id = "mesh.presence"
    title = "beacons visible within 5 s; friend-of-friend within TTL=3; TTL=1 neighbours only; " \
            "expiry marks offline"

    async def steps(self, run: Run, mesh: LocalMesh) -> None:
        urls = _urls(run)
        ring = [AgentIdentity.generate() for _ in range(6)]
        ids = [r.agent_id for r in ring]
        silent_i = 3
        watch = ExpiryWatch(ids[silent_i], PRESENCE_TTL_S)
        spy = await _endpoints(run)[0].connect()  # hears the silent agent's beacons
        try:
            async def heard(msg: Any) -> None:
                watch.heard(msg.data)

            await spy.subscribe(Subjects(mesh.run).presence, cb=heard)
            await server_has_seen(spy)
            agents: list[MeshAgent] = []
            for i, ident in enumerate(ring):  # a ring: each agent knows its two neighbours
                agents += await mesh.add(urls[i % len(urls)], 1, identities=[ident],
                                         neighbours={ids[(i - 1) % 6], ids[(i + 1) % 6]},
                                         presence_ttl=PRESENCE_TTL_S,
                                         warmup_beacons=(0.5, 0.5))  # every gap < the TTL
            await run.check(as_check("presence: beacons visible to all within 5 s",
                                     lambda: beacons_seen(agents), within=5))
            table = agents[0].neighbour_table()
            far = foaf_query(table, ids[0], ids[3], ttl=3)
            await run.record("presence: friend-of-friend finds an agent within TTL=3",
                             outcome(far.found and far.hops == 3, hops=far.hops))
            near, beyond = foaf_query(table, ids[0], ids[1], ttl=1), \
                foaf_query(table, ids[0], ids[2], ttl=1)
            await run.record("presence: TTL=1 reaches neighbours only",
                             outcome(near.found and not beyond.found, neighbour=near.found,
                                     two_hops=beyond.found))
            silent = agents[silent_i]
            watch.stopping([a for a in agents if a is not silent])
            await silent.stop(graceful=False)
            await run.check(as_check("presence: expiry marks a silent agent offline",
                                     watch.observe, within=watch.deadline_s))
        finally:
            await spy.close()


class Rendezvous(MeshScenario):
    id = "mesh.rendezvous"
    title = "deterministic shard assignment, lookup through the shard, coordinator failover"

    async def steps(self, run: Run, mesh: LocalMesh) -> None:
        urls = _urls(run)
        plan = plan_rendezvous(6)  # a target whose coordinators are two third parties
        agents: list[MeshAgent] = []
        for i, ident in enumerate(plan.identities):
            agents += await mesh.add(urls[i % len(urls)], 1, identities=[ident],
                                     lookup_timeout=0.5)
        await run.record("rendezvous: deterministic shard assignment",
                         shard_assignment(agents))
        await run.wait_until("beacons", lambda: beacons_seen(agents)[0] in OK_STATUSES, 10)
        await run.check(as_check("rendezvous: every agent registers with its shard's "
                                 "primary and backup", lambda: registrations(agents),
                                 within=15))
        by_id = {a.agent_id: a for a in agents}
        asker = by_id[plan.asker]
        found = await asker.lookup(plan.target)
        await run.record("rendezvous: lookup via the shard's coordinator works",
                         lookup_found(found, plan))
        await by_id[plan.primary].stop(graceful=False)
        failover = await asker.lookup(plan.target)
        await run.record("rendezvous: coordinator failover to the backup",
                         failover_found(failover, plan))


REPLAY_TTL_S = 5.0
"""The security scenario's replay cache TTL and age window (the default is 5 minutes): short
enough to watch an entry expire from the live cache."""


class Security(MeshScenario):
    id = "mesh.security"
    title = "valid accepted; invalid, tampered, substituted key rejected; replay ignored; " \
            "replay cache expiry"

    async def steps(self, run: Run, mesh: LocalMesh) -> None:
        url = _urls(run)[0]
        verifier = Verifier(replay=ReplayCache(ttl=REPLAY_TTL_S), max_age_s=REPLAY_TTL_S)
        agents = await mesh.add(url, 3, verifier=verifier)
        transport = mesh.transports[0]
        gossip = transport.subjects.gossip
        captured: list[tuple[float, bytes]] = []  # (monotonic arrival, wire bytes)
        spy = await _endpoints(run)[0].connect()
        try:
            async def grab(msg: Any) -> None:
                captured.append((time.monotonic(), msg.data))

            await spy.subscribe(gossip, cb=grab)
            await server_has_seen(spy)
            before = mesh_state(transport, agents)
            task = await agents[0].add_task("genuine")
            await run.check(as_check("security: a validly signed message is accepted",
                                     lambda: genuine_accepted(task, agents[0], agents, before,
                                                              transport), within=10))
            for forged in forgeries(agents[0].identity):
                before = mesh_state(transport, agents)
                await _inject(spy, gossip, forged.data)
                await run.check(as_check(
                    f"security: {forged.name}",
                    lambda f=forged, b=before: rejected_without_effect(f.reason, b, transport,
                                                                       agents, f.task),
                    within=10))
            # a fresh genuine op, replayed at once (in the cache), then after the cache's TTL
            second = await agents[0].add_task("genuine, to replay")
            await run.wait_until("the second genuine op on the wire and applied", lambda: (
                _captured_op(captured, second) and all(a.tasks.present(second)
                                                       for a in agents)), 10, 0.02)
            added_at, data = _captured_op(captured, second) or (0.0, b"")
            message_id = mesh_wire.parse(data).message_id
            before = mesh_state(transport, agents)
            await _inject(spy, gossip, data)
            await run.check(as_check("security: a replayed message is ignored",
                                     lambda: replay_ignored(before, transport, agents,
                                                            message_id),
                                     within=REPLAY_TTL_S / 2))
            expiry = EntryExpiryWatch(transport.verifier.replay, message_id, added_at)
            await run.check(as_check("security: replay cache entries expire after their TTL",
                                     expiry.observe, within=expiry.deadline_s))
            before = mesh_state(transport, agents)
            await _inject(spy, gossip, data)
            await run.check(as_check(
                "security: a replay after the cache TTL is rejected by the age window",
                lambda: rejected_without_effect("stale", before, transport, agents),
                within=10))
        finally:
            await spy.close()


def _captured_op(captured: list[tuple[float, bytes]], task: str) -> tuple[float, bytes] | None:
    """The first captured op message about ``task`` (arrival time, bytes), if any."""
    for at, data in captured:
        try:
            msg = mesh_wire.parse(data)
            if msg.kind == "op" and json.loads(msg.payload).get("t") == task:
                return at, data
        except (ValueError, AttributeError):  # mesh_wire.Malformed is a ValueError
            continue
    return None


async def _inject(nc: Any, subject: str, data: bytes) -> None:
    await nc.publish(subject, data)
    await nc.flush()


class ScaleOptions(ScenarioOptions):
    agents: PositiveInt = option(100, "simulated agents", "N")
    rate: PositiveFloat | None = option(None, "msg/s per agent (default 10)", "RATE")
    duration: PositiveFloat | None = option(
        None, "seconds of load (default 60; the plan's 5-10 min)", "SECONDS")
    workers: PositiveInt = option(2, "local worker processes hosting the agents", "N")


class Scale(Scenario):
    id = "mesh.scale"
    title = "N agents x R msg/s on worker processes: propagation latency (HDR), delivered " \
            "msg/s, memory and bandwidth per agent, convergence"
    needs_lab = False
    Options = ScaleOptions
    options: ScaleOptions
    mutates = ()  # load on core NATS subjects: messages, nothing stored

    def budget_s(self) -> float:
        return self.time_budget_s + (self.options.duration or 60.0)

    def steady_state(self):
        return [nats_cluster_healthy()]

    def plan(self):
        return [f"{self.options.agents} agents on {self.options.workers} worker processes, "
                f"{self.options.rate or 10:g} msg/s each for {self.options.duration or 60:g} s",
                "merge the workers' HDR intervals live; time convergence after the load",
                "targets: " + ", ".join(f"{k} {op} {v:g}" for k, (op, v) in
                                        SCALE_TARGETS.items())]

    async def method(self, run: Run) -> None:
        from ....core.events import LoadReport
        from ..scale_coordinator import ScaleError, run_scale

        def live(latency: Any, tick: Any) -> None:
            run.session.bus.publish(LoadReport(
                run_id=run.run_id, scenario=self.id, elapsed_s=tick.elapsed_s,
                offered_rps=tick.offered_msgs, throughput_rps=tick.throughput_msgs,
                errors=tick.errors, count=tick.samples, percentiles=latency.ladder(),
                buckets=latency.buckets(), unit="msg/s"))

        duration = self.options.duration or 60.0
        try:
            opts = self.options
            first = _endpoints(run)[0]
            auth = NatsCredentials.of(first.auth) if first.auth is not None else None
            res = await run_scale(first.url, nats_auth=auth, agents=opts.agents,
                                  rate=opts.rate or 10.0,
                                  duration_s=duration, workers=self.options.workers,
                                  on_interval=live, timeout_s=duration + 240)
        except ScaleError as exc:
            raise Abort(f"scale run could not start: {exc}") from exc
        run.session.bus.publish(LoadReport(
            run_id=run.run_id, scenario=self.id, final=True, elapsed_s=res.load_s,
            offered_rps=res.offered_msgs, throughput_rps=res.throughput_msgs,
            errors=res.errors, count=res.latency.count, percentiles=res.latency.ladder(),
            buckets=res.latency.buckets(), unit="msg/s"))
        for name, value in res.metrics().items():
            run.metric(name, value)
        run.metric("offered_msgs", res.offered_msgs)
        run.metric("deliveries_per_s", res.deliveries_per_s)
        for name, verdict in scale_verdicts(res, self.options.workers):
            await run.record(name, verdict)


SCENARIOS: list[type[Scenario]] = [Convergence, Partition, Presence, Rendezvous, Security,
                                   Scale]
