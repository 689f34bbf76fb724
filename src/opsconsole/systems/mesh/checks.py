"""The observations behind the `mesh` pack's checks, factored out so tests can drive them.

Every function here computes its verdict from live objects (the running agents, their
transport, its verifier and replay cache) or from what a spy heard on the wire, and every
one can fail. The watches (``ExpiryWatch``, ``EntryExpiryWatch``) remember when they first
saw a condition, so a check that the engine retries cannot pass later on something that
was already wrong (an expiry that came too early stays too early).

The rendezvous checks do not trust ``shard_of``: they recompute the documented definition
(docs/contracts/mesh.md) with ``blake3`` directly and pin it with literal test vectors.
What is read off the wire or forged onto it goes through the pack's own codec
(:mod:`.mesh_wire`); the agents, their transport and replay cache are the reference's,
hosted in this process until issue #20.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import blake3

from opsconsole_lab.mesh import (
    AgentIdentity,
    LookupResult,
    MeshAgent,
    MeshTransport,
    ReplayCache,
    shard_of,
)

from ...scenarios.engine import OK_STATUSES, Abort, Check, Outcome, Run, outcome
from . import wire as mesh_wire

if TYPE_CHECKING:
    from .scale_coordinator import ScaleResult

Observation = Callable[[], Outcome]


def as_check(name: str, observe: Observation, within: float = 0.0) -> Check:
    """A check whose verdict is ``observe()``, retried until it passes or ``within`` ends."""
    async def fn(_: Run) -> Outcome:
        return observe()

    return Check(name, fn, within)


def short(agent_id: str) -> str:
    return agent_id[:12]


# ---- convergence ------------------------------------------------------------------------


def claims_settled(agents: Sequence[MeshAgent], contested: Iterable[str]) -> Outcome:
    """Every contested task is claimed on every replica, by the same agent of the mesh."""
    ids = {a.agent_id for a in agents}
    winners: dict[str, list[str | None]] = {}
    bad: list[str] = []
    for task in contested:
        seen = [{t["id"]: t for t in a.snapshot()}.get(task) for a in agents]
        by = sorted({(t or {}).get("claimed_by") or "" for t in seen})
        winners[task] = [short(w) if w else None for w in by]
        if (any(t is None or t.get("state") != "claimed" for t in seen) or len(by) != 1
                or by[0] not in ids):
            bad.append(task)
    return outcome(bool(winners) and not bad, tasks=len(winners), winners=winners,
                   disagreeing=bad)


# ---- presence -----------------------------------------------------------------------------


class ExpiryWatch:
    """A silent agent's status at the live agents, from right before it stops until every one
    of them marks it offline.

    ``heard`` is a spy's callback for raw presence messages: it notes when the silent
    agent's last beacon went over the wire, the independent reference the expiry is measured
    against. ``observe`` passes once every observer says offline, each no earlier than
    ``ttl - early_s`` and no later than ``ttl + late_s`` after that beacon, and only if all
    of them said online right before the stop.
    """

    def __init__(self, silent: str, ttl: float, *, early_s: float = 0.25,
                 late_s: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.silent = silent
        self.ttl = ttl
        self.early_s = early_s
        self.late_s = late_s
        self.clock = clock
        self.last_beacon: float | None = None
        self.beacons = 0
        self.observers: list[MeshAgent] = []
        self.stopped_at: float | None = None
        self.before: dict[str, str] = {}
        self.offline_at: dict[str, float] = {}

    @property
    def deadline_s(self) -> float:
        """How long after the stop the last observer may take (the check's ``within``)."""
        return self.ttl + self.late_s + 0.5

    def heard(self, data: bytes) -> None:
        try:
            msg = mesh_wire.parse(data)
        except mesh_wire.Malformed:
            return
        if msg.agent_id == self.silent and msg.kind == "beacon":
            self.last_beacon = self.clock()
            self.beacons += 1

    def stopping(self, observers: Sequence[MeshAgent]) -> None:
        """Call right before stopping the silent agent: what each observer says now."""
        self.observers = list(observers)
        self.before = {o.agent_id: o.presence.status(self.silent) for o in self.observers}
        self.stopped_at = self.clock()

    def observe(self) -> Outcome:
        now = self.clock()
        for o in self.observers:
            if o.agent_id not in self.offline_at and o.presence.status(self.silent) == "offline":
                self.offline_at[o.agent_id] = now
        evidence: dict[str, Any] = {"ttl_s": self.ttl, "observers": len(self.observers),
                                    "beacons_heard": self.beacons}
        if self.stopped_at is None or not self.observers:
            return outcome(False, **evidence, reason="stopping() not called, or no observer")
        if self.last_beacon is None:
            return outcome(False, **evidence,
                           reason="no beacon of the silent agent heard on the wire")
        not_online = sorted(short(o) for o, s in self.before.items() if s != "online")
        still = sorted(short(o.agent_id) for o in self.observers
                       if o.agent_id not in self.offline_at)
        since = {o: t - self.last_beacon for o, t in self.offline_at.items()}
        early = sorted(short(o) for o, s in since.items() if s < self.ttl - self.early_s)
        late = sorted(short(o) for o, s in since.items() if s > self.ttl + self.late_s)
        evidence["online_before_stop"] = len(self.observers) - len(not_online)
        if self.offline_at:
            evidence["seconds_to_offline"] = round(max(self.offline_at.values())
                                                   - self.stopped_at, 2)
            evidence["since_last_beacon_s"] = [round(min(since.values()), 2),
                                               round(max(since.values()), 2)]
        for key, value in (("not_online_before_stop", not_online), ("still_online", still),
                           ("too_early", early), ("too_late", late)):
            if value:
                evidence[key] = value
        return outcome(not (not_online or still or early or late), **evidence)


def beacons_seen(agents: Sequence[MeshAgent]) -> Outcome:
    """Every agent sees every other agent online."""
    ids = {a.agent_id for a in agents}
    missing = {short(a.agent_id): len(ids - {a.agent_id} - a.peers()) for a in agents}
    missing = {a: n for a, n in missing.items() if n}
    return outcome(len(agents) > 1 and not missing, agents=len(agents), missing=missing)


# ---- rendezvous ---------------------------------------------------------------------------

SHARD_DOMAIN = b"saorsa-rendezvous"
COORDINATOR_DOMAIN = b"saorsa-coordinator"
#: BLAKE3 of the empty input, from the BLAKE3 specification's test vectors
BLAKE3_EMPTY = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
#: agent id -> shard under the documented definition (computed once, pinned here)
SHARD_VECTORS = {"00" * 32: 51981, "ff" * 32: 29878, "0123456789abcdef" * 4: 61585,
                 "5733e95d810ae8476bf5a0492484e05f12a37f7cc05791841202e61732aa527b": 41361}


def shard_by_definition(agent_id: str) -> int:
    """The documented shard: BLAKE3(domain || raw id) as a big-endian integer & 0xFFFF,
    that is, its last two bytes big-endian."""
    digest = blake3.blake3(SHARD_DOMAIN + bytes.fromhex(agent_id)).digest()
    return digest[30] << 8 | digest[31]


def coordinators_by_definition(agent_id: str, candidates: Iterable[str]) -> list[str]:
    """Primary and backup of ``agent_id``'s shard: the two highest HRW scores
    (first 8 bytes of BLAKE3(domain || shard u16 BE || candidate), ties by id)."""
    shard = shard_by_definition(agent_id)
    prefix = COORDINATOR_DOMAIN + bytes((shard >> 8, shard & 0xFF))

    def score(candidate: str) -> tuple[int, str]:
        digest = blake3.blake3(prefix + bytes.fromhex(candidate)).digest()
        return int.from_bytes(digest[:8], "big"), candidate

    return sorted(set(candidates), key=score, reverse=True)[:2]


def shard_assignment(agents: Sequence[MeshAgent],
                     shard_fn: Callable[[str], int] = shard_of) -> Outcome:
    """The shard each running agent uses is the documented one, and ``shard_fn`` (the
    helper agents and lookups call) meets the pinned vectors."""
    hash_ok = blake3.blake3(b"").hexdigest() == BLAKE3_EMPTY
    vectors = {short(a): {"got": shard_fn(a), "want": want}
               for a, want in SHARD_VECTORS.items() if shard_fn(a) != want}
    wrong = {short(a.agent_id): {"agent": a.shard, "definition": shard_by_definition(a.agent_id)}
             for a in agents if a.shard != shard_by_definition(a.agent_id)}
    evidence: dict[str, Any] = {"agents": len(agents),
                                "shards": [a.shard for a in agents],
                                "vectors": len(SHARD_VECTORS), "blake3_vector_ok": hash_ok}
    if vectors:
        evidence["wrong_vectors"] = vectors
    if wrong:
        evidence["wrong_agents"] = wrong
    return outcome(bool(agents) and hash_ok and not vectors and not wrong, **evidence)


def registrations(agents: Sequence[MeshAgent]) -> Outcome:
    """Every agent registered with exactly its shard's primary and backup (by definition,
    over the running agents), and both of them hold its record with the right shard."""
    ids = [a.agent_id for a in agents]
    by_id = {a.agent_id: a for a in agents}
    wrong: dict[str, dict[str, list[str]]] = {}
    for a in agents:
        want = coordinators_by_definition(a.agent_id, ids)
        shard = shard_by_definition(a.agent_id)
        holding = [c for c in want
                   if (by_id[c].directory.lookup(a.agent_id) or {}).get("shard") == shard]
        if list(a.registered_with) != want or holding != want:
            wrong[short(a.agent_id)] = {
                "registered_with": [short(c) for c in a.registered_with],
                "coordinators": [short(c) for c in want],
                "holding_record": [short(c) for c in holding]}
    return outcome(len(agents) > 2 and not wrong, agents=len(agents), wrong=wrong)


@dataclass(frozen=True)
class RendezvousPlan:
    """Identities with a target whose primary and backup are two other agents, and an
    asker that is none of the three (so failover is about a third party's crash)."""

    identities: list[AgentIdentity]
    target: str
    primary: str
    backup: str
    asker: str


def plan_rendezvous(n: int = 6, attempts: int = 50,
                    generate: Callable[[], AgentIdentity] = AgentIdentity.generate
                    ) -> RendezvousPlan:
    """Generate ``n`` identities until the configuration exists (bounded); else ``Abort``."""
    for _ in range(attempts):
        identities = [generate() for _ in range(n)]
        ids = [i.agent_id for i in identities]
        for target in ids:
            coordinators = coordinators_by_definition(target, ids)
            if len(coordinators) < 2 or target in coordinators:
                continue
            askers = [a for a in ids if a not in (target, *coordinators)]
            if askers:
                return RendezvousPlan(identities, target, *coordinators, askers[0])
    raise Abort(f"in {attempts} sets of {n} identities no agent had a primary and a backup "
                "coordinator that were two other agents with a fourth left to ask "
                "(rendezvous needs at least 4 agents)")


def lookup_found(found: LookupResult, plan: RendezvousPlan) -> Outcome:
    """The first lookup is answered by the target's primary with the target's record."""
    record = found.record or {}
    ok = (found.found and found.coordinator == plan.primary and found.tried == (plan.primary,)
          and record.get("agent_id") == plan.target
          and record.get("shard") == shard_by_definition(plan.target))
    return outcome(ok, shard=shard_by_definition(plan.target),
                   coordinator=short(found.coordinator or ""), primary=short(plan.primary),
                   tried=[short(t) for t in found.tried])


def failover_found(found: LookupResult, plan: RendezvousPlan) -> Outcome:
    """With the primary crashed, the lookup tries it, then gets the record from the backup."""
    record = found.record or {}
    ok = (found.found and found.failover and found.tried == (plan.primary, plan.backup)
          and found.coordinator == plan.backup and record.get("agent_id") == plan.target)
    return outcome(ok, tried=[short(t) for t in found.tried],
                   coordinator=short(found.coordinator or ""), backup=short(plan.backup))


# ---- security -----------------------------------------------------------------------------


@dataclass(frozen=True)
class MeshState:
    """What a forged or replayed message could change: reject counters and replicas."""

    rejected: dict[str, int]
    accepted: int
    applied: dict[str, int]
    duplicates: dict[str, int]
    digests: dict[str, str]


def mesh_state(transport: MeshTransport, agents: Sequence[MeshAgent]) -> MeshState:
    return MeshState(dict(transport.stats.rejected), transport.verifier.stats.accepted,
                     {a.agent_id: a.stats.ops_applied for a in agents},
                     {a.agent_id: a.stats.ops_duplicate for a in agents},
                     {a.agent_id: a.digest() for a in agents})


def genuine_accepted(task: str, author: MeshAgent, agents: Sequence[MeshAgent],
                     before: MeshState, transport: MeshTransport) -> Outcome:
    """A validly signed op reached every other agent through the verifying transport."""
    others = [a for a in agents if a is not author]
    missing = [short(a.agent_id) for a in others if not a.tasks.present(task)]
    accepted = transport.verifier.stats.accepted - before.accepted
    return outcome(bool(others) and not missing and accepted >= 1, accepted=accepted,
                   missing=missing, rejected=dict(transport.stats.rejected))


def rejected_without_effect(reason: str, before: MeshState, transport: MeshTransport,
                            agents: Sequence[MeshAgent], task: str | None = None) -> Outcome:
    """Exactly one more rejection, for ``reason`` and nothing else, and no replica changed:
    no op applied or counted as a duplicate, same digests, the forged task (if any) absent."""
    now = mesh_state(transport, agents)
    grew = {r: n - before.rejected.get(r, 0) for r, n in now.rejected.items()
            if n != before.rejected.get(r, 0)}
    applied = [short(a) for a, n in now.applied.items() if n != before.applied.get(a)]
    duplicates = [short(a) for a, n in now.duplicates.items() if n != before.duplicates.get(a)]
    changed = [short(a) for a, d in now.digests.items() if d != before.digests.get(a)]
    present = [short(a.agent_id) for a in agents if task is not None and a.tasks.present(task)]
    ok = grew == {reason: 1} and not (applied or duplicates or changed or present)
    evidence: dict[str, Any] = {"reason": reason, "rejected_delta": grew}
    for key, value in (("applied_by", applied), ("duplicate_at", duplicates),
                       ("state_changed_at", changed), ("forged_task_at", present)):
        if value:
            evidence[key] = value
    return outcome(ok, **evidence)


def replay_ignored(before: MeshState, transport: MeshTransport, agents: Sequence[MeshAgent],
                   message_id: bytes) -> Outcome:
    """Rejected as a replay without effect, and the live cache holds the message id."""
    status, evidence = rejected_without_effect("replay", before, transport, agents)
    cache = transport.verifier.replay
    held = message_id in cache
    return outcome(status in OK_STATUSES and held, **evidence, held_by_live_cache=held,
                   cache_ttl_s=cache.ttl)


class EntryExpiryWatch:
    """A message id in the live replay cache, from when the transport added it (``added_at``,
    on the cache's clock) until the cache drops it: no earlier than ``ttl - early_s``, no
    later than ``ttl + late_s``."""

    def __init__(self, cache: ReplayCache, message_id: bytes, added_at: float, *,
                 early_s: float = 0.25, late_s: float = 1.0) -> None:
        self.cache = cache
        self.message_id = message_id
        self.added_at = added_at
        self.early_s = early_s
        self.late_s = late_s
        self.gone_at: float | None = None

    @property
    def deadline_s(self) -> float:
        """How long from now the check may wait (its ``within``)."""
        return max(0.0, self.added_at + self.cache.ttl + self.late_s - self.cache.clock()) + 0.5

    def observe(self) -> Outcome:
        now = self.cache.clock()
        if self.gone_at is None and self.message_id not in self.cache:
            self.gone_at = now
        ttl = self.cache.ttl
        if self.gone_at is None:
            return outcome(False, ttl_s=ttl, reason="still in the live cache",
                           age_s=round(now - self.added_at, 2), entries=len(self.cache))
        age = self.gone_at - self.added_at
        return outcome(ttl - self.early_s <= age <= ttl + self.late_s, ttl_s=ttl,
                       gone_after_s=round(age, 2), entries=len(self.cache))


@dataclass(frozen=True)
class Forgery:
    """A forged op that would add ``task`` if any agent accepted it."""

    name: str
    data: bytes
    reason: str  # the one reject reason it must hit
    task: str


def forged_op_payload(author: str, seq: int, title: str) -> tuple[str, bytes]:
    """An ``add`` op's gossip payload; ``seq`` far above the author's, so a replica that
    accepted it would apply it (not drop it as a duplicate)."""
    task = f"forged-{title}"
    return task, mesh_wire.add_op_payload(seq, time.time_ns() // 1000, task, title)


FORGED_SEQ = 1 << 40


def forgeries(victim: AgentIdentity) -> list[Forgery]:
    """A tampered, a truncated and a key-substituted op in ``victim``'s name."""
    task_t, payload = forged_op_payload(victim.agent_id, FORGED_SEQ + 1, "tampered")
    signed = victim.sign("op", payload)
    at = signed.index(b'"tampered"') + 1
    tampered = signed[:at] + bytes([signed[at] ^ 0x20]) + signed[at + 1:]  # t -> T: valid JSON
    task_m, payload = forged_op_payload(victim.agent_id, FORGED_SEQ + 2, "truncated")
    truncated = victim.sign("op", payload)[:-10]
    # Mallory signs with her own key but claims the victim's id: valid signature, wrong binding
    task_k, payload = forged_op_payload(victim.agent_id, FORGED_SEQ + 3, "substituted")
    substituted = mesh_wire.Signer().envelope("op", victim.agent_id, time.time_ns(), payload)
    return [Forgery("a tampered message is rejected", tampered, "bad_signature", task_t),
            Forgery("an invalid (truncated) message is rejected", truncated, "malformed",
                    task_m),
            Forgery("key substitution detected", substituted, "key_substitution", task_k)]


# ---- scale --------------------------------------------------------------------------------

SCALE_TARGETS = {"p95_ms": ("<", 500.0), "throughput_msgs": (">", 500.0),
                 "mem_mb_per_agent": ("<", 50.0), "bandwidth_kbps_per_agent": ("<", 100.0),
                 "convergence_seconds": ("<", 30.0)}


def scale_verdicts(res: ScaleResult, workers: int) -> list[tuple[str, Outcome]]:
    """The scale run's records. A worker that never reported its load window fails its own
    record, and with no worker reporting, no target can pass on the zeros left in place of
    figures (bandwidth and memory used to pass on them)."""
    lost = {w.name: w.lost or f"no load report (phase {w.phase})"
            for w in res.per_worker if w.load_s <= 0}
    out = [("scale: every worker registered and every agent started", outcome(
                res.connection_success_rate == 1.0, agents=res.agents, workers=res.workers,
                rate=res.connection_success_rate)),
           ("scale: every worker ran the load and reported it", outcome(
               res.workers == workers and not lost, ran=res.workers, expected=workers,
               lost=lost)),
           ("scale: every agent converged after the load", outcome(
               res.converged, seconds=round(res.convergence_seconds, 2)))]
    for name, (op, limit) in SCALE_TARGETS.items():
        value = getattr(res, name)
        ok = value < limit if op == "<" else value > limit
        evidence: dict[str, Any] = {"value": round(value, 3)}
        if res.workers == 0:
            ok, evidence["reason"] = False, "no worker reported its load"
        out.append((f"scale: {name} {op} {limit:g}", outcome(ok, **evidence)))
    return out
