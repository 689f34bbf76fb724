"""The mesh agent: a task-list replica that gossips signed ops and repairs by anti-entropy.

Message kinds (payload JSON inside a signed envelope, see ``identity``):

- ``op`` (gossip): one CRDT operation; its author is the signer, its origin time the
  envelope timestamp (so receivers measure propagation latency).
- ``beacon`` (presence): ``{"seq", "ttl", "nbrs", "bye"?}``.
- ``ae.sync`` (direct): ``{"ctx", "reply"}`` -- "this is what I have". The receiver answers
  with an ``ae.delta`` of what the sender lacks, and asks for what it lacks itself.
- ``ae.delta`` (direct): ``{"id", "i", "n", "state", "ctx"?, "want"?}`` -- chunk ``i`` of
  ``n``; the last chunk carries the sender's context (adopted only when all chunks of that
  delta arrived) and ``want`` (= please send me what I lack, given this context).
- ``rdv.register`` / ``rdv.lookup`` / ``rdv.reply`` (direct): rendezvous records.

An agent runs one background task (beacons, rendezvous registration, anti-entropy); all
handlers are synchronous and replies are sent from short-lived tasks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import json
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .crdt import END, DotContext, NodeId, Op, Scalar, TaskList, pieces, split_state
from .identity import AgentIdentity
from .presence import PRESENCE_TTL_S, PresenceView
from .rendezvous import RendezvousDirectory, hrw_score, rank_coordinators, shard_of
from .transport import Channel, Delivery, MeshTransport

log = logging.getLogger(__name__)

WARMUP_BEACONS = (0.5, 0.5, 1.0, 2.0)
"""Gaps between the first beacons, so agents started a moment later see this one soon.
Every beacon reaches every agent: pass ``warmup_beacons=()`` when starting 1000s at once."""
PENDING_DELTA_TTL_S = 60.0


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()


@dataclass
class AgentStats:
    msgs_sent: int = 0
    bytes_sent: int = 0
    msgs_received: int = 0
    bytes_received: int = 0
    ops_local: int = 0
    ops_applied: int = 0
    ops_duplicate: int = 0
    ae_rounds: int = 0
    ae_deltas_sent: int = 0  # delta messages (chunks)
    ae_chunked: int = 0  # deltas that needed more than one chunk
    ae_deltas_received: int = 0
    ae_pieces_received: int = 0
    beacons_sent: int = 0
    beacons_received: int = 0
    rdv_registrations: int = 0
    rdv_lookups: int = 0
    rdv_failovers: int = 0
    errors: int = 0
    by_kind_received: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class LookupResult:
    found: bool
    record: dict[str, Any] | None
    coordinator: str | None  # who answered with the record
    tried: tuple[str, ...]  # coordinators asked, in order (primary first)

    @property
    def failover(self) -> bool:
        return self.found and len(self.tried) > 1


OpCallback = Callable[["MeshAgent", Op, float], None]


class MeshAgent:
    """One mesh agent on a shared transport.

    Timing knobs: ``ae_interval`` (anti-entropy period, jittered ±25 %), ``presence_ttl``
    (seconds a beacon keeps us online) and ``beacon_interval`` (default ``ttl / 3``, at most
    30 s). ``coordinators``: fixed rendezvous candidate pool; default = online agents.
    ``on_op(agent, op, latency_s)`` is called for every op applied from gossip
    (latency = receive wall clock - the envelope's signing time; same-host clocks).

    Restarting an identity with an empty replica: its op counter starts again at 1 and
    peers would drop its new ops as already seen. Run ``anti_entropy(peer)`` and wait for a
    delta (``stats.ae_deltas_received``) before local ops: the counter then resumes above
    everything the mesh holds from it.
    """

    def __init__(self, identity: AgentIdentity, transport: MeshTransport, *,
                 ae_interval: float = 2.0, presence_ttl: float = PRESENCE_TTL_S,
                 beacon_interval: float | None = None, neighbours: Iterable[str] = (),
                 coordinators: Iterable[str] | None = None,
                 record: Mapping[str, Any] | None = None, on_op: OpCallback | None = None,
                 clock_us: Callable[[], int] | None = None,
                 monotonic: Callable[[], float] = time.monotonic,
                 max_chunk_bytes: int = 256 * 1024, lookup_timeout: float = 1.0,
                 warmup_beacons: Iterable[float] = WARMUP_BEACONS,
                 seed: int | None = None) -> None:
        self.identity = identity
        self.agent_id = identity.agent_id
        self.transport = transport
        self.tasks = TaskList(self.agent_id, clock_us)
        self.presence = PresenceView(presence_ttl, monotonic)
        self.directory = RendezvousDirectory(presence_ttl, monotonic)
        self.stats = AgentStats()
        self.ae_interval = ae_interval
        self.presence_ttl = presence_ttl
        self.beacon_interval = beacon_interval or min(presence_ttl / 3, 30.0)
        self.neighbours = set(neighbours)
        self.coordinators = None if coordinators is None else set(coordinators)
        self.record = dict(record or {})
        self.on_op = on_op
        self.max_chunk_bytes = max_chunk_bytes
        self.lookup_timeout = lookup_timeout
        self.warmup_beacons = tuple(warmup_beacons)
        self._monotonic = monotonic
        self._rng = random.Random(seed if seed is not None else self.agent_id)
        self._known: set[str] = set()  # peers heard from (fallback when presence is empty)
        self._beacon_seq = 0
        self._delta_seq = 0
        self._pending: dict[tuple[str, int], list[float]] = {}  # (sender, id) -> [count, t]
        self._lookups: dict[int, asyncio.Future[dict[str, Any] | None]] = {}
        self._lookup_seq = 0
        self._tasks: set[asyncio.Task[Any]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._scores: dict[str, int] = {}  # HRW score of each candidate for our own shard
        self._registered: list[str] = []  # coordinators we last registered with

    def __repr__(self) -> str:
        return f"MeshAgent({self.agent_id[:12]})"

    # ---- lifecycle ----------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._loop_task is not None and not self._loop_task.done()

    async def start(self) -> None:
        """Attach to the transport and start beacons and anti-entropy."""
        self.transport.attach(self.agent_id, self._on_delivery)
        self._loop_task = asyncio.create_task(self._run(), name=f"mesh-agent-{self.agent_id[:8]}")

    async def stop(self, graceful: bool = True) -> None:
        """Stop; ``graceful`` says goodbye so peers mark us offline at once (no crash)."""
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
            self._loop_task = None
        if graceful:
            with contextlib.suppress(Exception):
                await self.beacon(bye=True)
        self.transport.detach(self.agent_id)
        for task in list(self._tasks):
            task.cancel()
        for fut in self._lookups.values():
            if not fut.done():
                fut.set_result(None)
        self._lookups.clear()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        warmup = list(self.warmup_beacons)
        next_beacon = loop.time()
        next_ae = loop.time() + self._rng.uniform(0.25, 1.0) * self.ae_interval
        while True:
            now = loop.time()
            try:  # the schedule advances first, so a failing round cannot spin
                if now >= next_beacon:
                    registering = not warmup  # once the first beacons had time to spread
                    next_beacon = now + (warmup.pop(0) if warmup else self.beacon_interval)
                    await self.beacon()
                    if registering:
                        await self.register()
                if now >= next_ae:
                    next_ae = now + self.ae_interval * self._rng.uniform(0.75, 1.25)
                    if self._registered and self.my_coordinators() != self._registered:
                        await self.register()  # a coordinator left or a better one joined
                    await self.anti_entropy()
                    self._expire_pending()
            except asyncio.CancelledError:
                raise
            except Exception:
                self.stats.errors += 1
                log.exception("mesh agent %s: background round failed", self.agent_id[:12])
            await asyncio.sleep(max(0.0, min(next_beacon, next_ae) - loop.time()))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stats.errors += 1
            log.error("mesh agent %s: send failed: %r", self.agent_id[:12], task.exception())

    # ---- sending -----------------------------------------------------------------------------

    def _sign(self, kind: str, body: Any) -> bytes:
        data = self.identity.sign(kind, _dumps(body))
        self.stats.msgs_sent += 1
        self.stats.bytes_sent += len(data)
        return data

    async def _broadcast(self, channel: Channel, kind: str, body: Any) -> None:
        await self.transport.publish(channel, self._sign(kind, body))

    async def _direct(self, channel: Channel, target: str, kind: str, body: Any) -> None:
        await self.transport.send(channel, self.agent_id, target, self._sign(kind, body))

    async def _gossip(self, op: Op | None) -> bool:
        if op is None:
            return False
        self.stats.ops_local += 1
        await self._broadcast("gossip", "op", op.to_json(with_author=False))
        return True

    # ---- task-list API (each applies locally, then gossips) ------------------------------

    async def add_task(self, title: str | None = None, *, after: NodeId | str = END,
                       task_id: str | None = None, **fields: Scalar) -> str:
        """Add a task (``after``: END, HEAD or a task id); returns its id. ``task_id``
        re-adds an existing task."""
        if title is not None:
            fields["title"] = title
        op = self.tasks.add(fields, after=after, task_id=task_id)
        await self._gossip(op)
        return op.task

    async def remove_task(self, task: str) -> bool:
        return await self._gossip(self.tasks.remove(task))

    async def claim(self, task: str) -> bool:
        """Claim locally; a concurrent earlier claim elsewhere may still win after merge."""
        return await self._gossip(self.tasks.claim(task))

    async def complete(self, task: str) -> bool:
        return await self._gossip(self.tasks.complete(task))

    async def update(self, task: str, **fields: Scalar) -> bool:
        return await self._gossip(self.tasks.update(task, fields))

    async def move(self, task: str, after: NodeId | str) -> bool:
        return await self._gossip(self.tasks.move(task, after))

    def snapshot(self) -> list[dict[str, Any]]:
        return self.tasks.snapshot()

    def digest(self) -> str:
        return self.tasks.digest()

    # ---- presence & rendezvous -------------------------------------------------------------

    def peers(self) -> set[str]:
        return self.presence.online() - {self.agent_id}

    def neighbour_table(self) -> dict[str, frozenset[str]]:
        """Online agents' announced neighbours plus our own (input for ``foaf_query``)."""
        table = self.presence.neighbour_table()
        table[self.agent_id] = frozenset(self.neighbours)
        return table

    @functools.cached_property
    def shard(self) -> int:
        return shard_of(self.agent_id)

    def candidate_pool(self) -> set[str]:
        if self.coordinators is not None:
            return self.coordinators & (self.presence.online() | {self.agent_id})
        return self.presence.online() | {self.agent_id}

    async def beacon(self, bye: bool = False) -> None:
        self._beacon_seq += 1
        body: dict[str, Any] = {"seq": self._beacon_seq, "ttl": self.presence_ttl}
        if self.neighbours:
            body["nbrs"] = sorted(self.neighbours)
        if bye:
            body["bye"] = True
        self.stats.beacons_sent += 1
        await self._broadcast("presence", "beacon", body)

    def my_coordinators(self) -> list[str]:
        """Primary and backup coordinators of our own shard (HRW scores cached)."""
        scores, shard, pool = self._scores, self.shard, self.candidate_pool()
        for candidate in pool:
            if candidate not in scores:
                scores[candidate] = hrw_score(shard, candidate)
        return heapq.nlargest(2, pool, key=lambda c: (scores[c], c))

    @property
    def registered_with(self) -> tuple[str, ...]:
        """The coordinators our last registration went to (primary first); empty before."""
        return tuple(self._registered)

    async def register(self) -> list[str]:
        """Register our record with our shard's primary and backup coordinators."""
        targets = self._registered = self.my_coordinators()
        body = {"record": {**self.record, "agent_id": self.agent_id, "shard": self.shard}}
        for target in targets:
            if target == self.agent_id:
                self.directory.register(self.agent_id, body["record"])
            else:
                await self._direct("rdv", target, "rdv.register", body)
        self.stats.rdv_registrations += 1
        return targets

    async def lookup(self, agent_id: str, timeout: float | None = None) -> LookupResult:
        """Find ``agent_id``'s record via its shard's coordinators, primary then backup."""
        self.stats.rdv_lookups += 1
        ranked = rank_coordinators(shard_of(agent_id), self.candidate_pool(), 2)
        tried: list[str] = []
        for coordinator in ranked:
            tried.append(coordinator)
            if coordinator == self.agent_id:
                record = self.directory.lookup(agent_id)
            else:
                record = await self._ask(coordinator, agent_id, timeout or self.lookup_timeout)
            if record is not None:
                if len(tried) > 1:
                    self.stats.rdv_failovers += 1
                return LookupResult(True, record, coordinator, tuple(tried))
        return LookupResult(False, None, None, tuple(tried))

    async def _ask(self, coordinator: str, agent_id: str,
                   timeout: float) -> dict[str, Any] | None:
        self._lookup_seq += 1
        req = self._lookup_seq
        fut: asyncio.Future[dict[str, Any] | None] = asyncio.get_running_loop().create_future()
        self._lookups[req] = fut
        try:
            await self._direct("rdv", coordinator, "rdv.lookup", {"target": agent_id, "req": req})
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            return None
        finally:
            self._lookups.pop(req, None)

    # ---- anti-entropy ------------------------------------------------------------------------

    def _pick_peer(self) -> str | None:
        peers = self.peers() or (self._known - {self.agent_id})
        return self._rng.choice(sorted(peers)) if peers else None

    async def anti_entropy(self, peer: str | None = None) -> str | None:
        """One round: send our context to ``peer`` (default: a random online peer)."""
        peer = peer or self._pick_peer()
        if peer is None:
            return None
        self.stats.ae_rounds += 1
        await self._direct("ae", peer, "ae.sync",
                           {"ctx": self.tasks.seen.to_json(), "reply": True})
        return peer

    async def _send_delta(self, peer: str, delta: dict[str, Any], want: bool) -> None:
        ctx = delta.pop("ctx")
        chunks = list(split_state(delta, self.max_chunk_bytes)) or [{}]
        self._delta_seq += 1
        if len(chunks) > 1:
            self.stats.ae_chunked += 1
        for i, chunk in enumerate(chunks):
            body: dict[str, Any] = {"id": self._delta_seq, "i": i, "n": len(chunks),
                                    "state": chunk}
            if i == len(chunks) - 1:
                body["ctx"] = ctx
                if want:
                    body["want"] = True
            self.stats.ae_deltas_sent += 1
            await self._direct("ae", peer, "ae.delta", body)

    def _on_sync(self, sender: str, body: Mapping[str, Any]) -> None:
        peer_ctx = DotContext.from_json(body["ctx"])
        want = bool(body.get("reply")) and peer_ctx.has_dots_missing_in(self.tasks.seen)
        delta = self.tasks.delta_for(peer_ctx)
        if delta is None and not want:
            return
        if delta is None:
            delta = {"ctx": self.tasks.seen.to_json()}
        self._spawn(self._send_delta(sender, delta, want))

    def _on_delta(self, sender: str, body: Mapping[str, Any]) -> None:
        self.stats.ae_deltas_received += 1
        state = body.get("state") or {}
        self.stats.ae_pieces_received += pieces(state)
        self.tasks.merge_state(state, with_ctx=False)
        total = int(body.get("n", 1))
        if total > 1:
            key = (sender, int(body["id"]))
            entry = self._pending.setdefault(key, [0, self._monotonic()])
            entry[0] += 1
            if "ctx" not in body:
                return
            del self._pending[key]
            if entry[0] != total:
                return  # a chunk went missing: keep the pieces, not the context
        if "ctx" not in body:
            return
        self.tasks.merge_state({"ctx": body["ctx"]})
        if body.get("want"):
            delta = self.tasks.delta_for(DotContext.from_json(body["ctx"]))
            if delta is not None:
                self._spawn(self._send_delta(sender, delta, False))

    def _expire_pending(self) -> None:
        now = self._monotonic()
        for key, (_, t) in list(self._pending.items()):
            if now - t > PENDING_DELTA_TTL_S:
                del self._pending[key]

    # ---- receiving ---------------------------------------------------------------------------

    def _on_delivery(self, d: Delivery) -> None:
        stats = self.stats
        stats.msgs_received += 1
        stats.bytes_received += d.size
        kind = d.msg.kind
        sender = d.msg.agent_id
        if kind == "op":
            if self.tasks.apply(d.body):
                stats.ops_applied += 1
                if self.on_op is not None:
                    self.on_op(self, d.body, (time.time_ns() - d.msg.timestamp_ns) / 1e9)
            else:
                stats.ops_duplicate += 1
            self._known.add(sender)
            return
        stats.by_kind_received[kind] = stats.by_kind_received.get(kind, 0) + 1
        body = d.body
        try:
            if kind == "beacon":
                stats.beacons_received += 1
                if body.get("bye"):
                    self.presence.leave(sender)
                    self._known.discard(sender)
                    return
                else:
                    self.presence.observe(sender, body.get("nbrs", ()),
                                          float(body.get("ttl") or self.presence_ttl))
            elif kind == "ae.sync":
                self._on_sync(sender, body)
            elif kind == "ae.delta":
                self._on_delta(sender, body)
            elif kind == "rdv.register":
                record = dict(body["record"])
                record["agent_id"] = sender  # a record is only ever about its signer
                self.directory.register(sender, record)
            elif kind == "rdv.lookup":
                target = str(body["target"])
                self._spawn(self._direct("rdv", sender, "rdv.reply", {
                    "target": target, "req": body["req"],
                    "record": self.directory.lookup(target)}))
            elif kind == "rdv.reply":
                fut = self._lookups.get(int(body["req"]))
                if fut is not None and not fut.done():
                    fut.set_result(body.get("record"))
            else:
                stats.errors += 1
        except (KeyError, TypeError, ValueError):
            stats.errors += 1
            log.warning("mesh agent %s: malformed %s from %s", self.agent_id[:12], kind,
                        sender[:12])
        self._known.add(sender)


def digests_agree(agents: Iterable[MeshAgent]) -> bool:
    """True when every agent's task-list digest is the same (converged)."""
    return len({a.digest() for a in agents}) <= 1
