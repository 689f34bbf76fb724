"""Presence beacons with a TTL, an online/offline view, and friend-of-friend queries.

All of it is pure logic with an injectable clock; the agent feeds beacons in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import blake3

PRESENCE_TTL_S = 900.0


@dataclass(slots=True)
class _Entry:
    last_seen: float
    ttl: float
    neighbours: frozenset[str]
    gone: bool = False


class PresenceView:
    """Who is online: an agent is online until ``ttl`` seconds after its last beacon.

    A beacon may carry its own TTL (the sender's setting); otherwise ``default_ttl`` applies.
    A goodbye (``leave``) marks an agent offline at once.
    """

    def __init__(self, default_ttl: float = PRESENCE_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.default_ttl = default_ttl
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def observe(self, agent_id: str, neighbours: Iterable[str] = (),
                ttl: float | None = None) -> bool:
        """Record a beacon; True when the agent was not online before."""
        entry = self._entries.get(agent_id)
        was_online = entry is not None and self._online(entry, self.clock())
        self._entries[agent_id] = _Entry(self.clock(), ttl or self.default_ttl,
                                         frozenset(neighbours))
        return not was_online

    def leave(self, agent_id: str) -> None:
        entry = self._entries.get(agent_id)
        if entry is not None:
            entry.gone = True

    @staticmethod
    def _online(entry: _Entry, now: float) -> bool:
        return not entry.gone and now - entry.last_seen < entry.ttl

    def is_online(self, agent_id: str) -> bool:
        entry = self._entries.get(agent_id)
        return entry is not None and self._online(entry, self.clock())

    def status(self, agent_id: str) -> str:
        """``online``, ``offline`` (known, expired or left) or ``unknown``."""
        entry = self._entries.get(agent_id)
        if entry is None:
            return "unknown"
        return "online" if self._online(entry, self.clock()) else "offline"

    def online(self) -> set[str]:
        now = self.clock()
        return {a for a, e in self._entries.items() if self._online(e, now)}

    def offline(self) -> set[str]:
        now = self.clock()
        return {a for a, e in self._entries.items() if not self._online(e, now)}

    def neighbour_table(self, online_only: bool = True) -> dict[str, frozenset[str]]:
        """Neighbour lists as announced in beacons (input for ``foaf_query``)."""
        now = self.clock()
        return {a: e.neighbours for a, e in self._entries.items()
                if not online_only or self._online(e, now)}

    def __len__(self) -> int:
        return len(self._entries)


@dataclass(frozen=True)
class FoafResult:
    found: bool
    hops: int | None
    path: tuple[str, ...] | None
    messages: int
    visited: frozenset[str] = field(default_factory=frozenset)


def _spread(query_id: bytes, node: str, neighbour: str) -> bytes:
    return blake3.blake3(query_id + node.encode() + b"\x00" + neighbour.encode()).digest()


def foaf_query(neighbours: Mapping[str, Iterable[str]], origin: str, target: str, ttl: int,
               fanout: int | None = None, query_id: bytes = b"") -> FoafResult:
    """Friend-of-friend search: does a query from ``origin`` reach ``target`` in ``ttl`` hops?

    Model: the query moves in rounds; each hop costs one message and uses one unit of TTL.
    A node that has the target as a neighbour sends it straight there; otherwise it
    forwards to at most ``fanout`` neighbours (all when None) that are not already on the
    query's path, chosen by a hash of ``query_id`` so the choice is deterministic but
    spread. Nodes drop a query they have already seen. So TTL=1 finds only neighbours.
    """
    if origin == target:
        return FoafResult(True, 0, (origin,), 0, frozenset({origin}))
    tables = {a: sorted(set(n)) for a, n in neighbours.items()}
    visited = {origin}
    frontier: list[tuple[str, ...]] = [(origin,)]
    messages = 0
    for hop in range(1, ttl + 1):
        nxt: list[tuple[str, ...]] = []
        for path in frontier:
            node = path[-1]
            nbrs = [n for n in tables.get(node, ()) if n not in path]
            if target in nbrs:
                return FoafResult(True, hop, (*path, target), messages + 1,
                                  frozenset(visited | {target}))
            if fanout is not None and len(nbrs) > fanout:
                nbrs = sorted(nbrs, key=lambda n, node=node: _spread(query_id, node, n))[:fanout]
            for n in nbrs:
                messages += 1
                if n not in visited:
                    visited.add(n)
                    nxt.append((*path, n))
        frontier = nxt
        if not frontier:
            break
    return FoafResult(False, None, None, messages, frozenset(visited))
