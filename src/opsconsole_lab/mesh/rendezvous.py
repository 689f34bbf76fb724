"""Rendezvous shards and per-shard coordinators (primary + backup) by HRW hashing.

``shard(agent_id) = BLAKE3(b"saorsa-rendezvous" || agent_id_bytes) & 0xFFFF`` where
``agent_id_bytes`` is the raw 32-byte id (``bytes.fromhex(agent_id)``) and the 32-byte
digest is read as one big-endian integer, i.e. the shard is its **last two bytes,
big-endian**.

Coordinators of a shard are the candidates ranked by highest-random-weight score
``BLAKE3(b"saorsa-coordinator" || shard (u16 BE) || candidate_id_bytes)``: first = primary,
second = backup. Removing a dead candidate leaves everyone else's rank unchanged, so the
backup becomes primary without any reshuffle of other shards.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import blake3

DOMAIN = b"saorsa-rendezvous"
COORDINATOR_DOMAIN = b"saorsa-coordinator"
SHARDS = 0x10000


def _id_bytes(agent_id: str | bytes) -> bytes:
    return agent_id if isinstance(agent_id, bytes) else bytes.fromhex(agent_id)


def shard_of(agent_id: str | bytes) -> int:
    """The agent's rendezvous shard in ``[0, 65535]``."""
    digest = blake3.blake3(DOMAIN + _id_bytes(agent_id)).digest()
    return int.from_bytes(digest, "big") & 0xFFFF


def hrw_score(shard: int, candidate: str | bytes) -> int:
    data = COORDINATOR_DOMAIN + shard.to_bytes(2, "big") + _id_bytes(candidate)
    return int.from_bytes(blake3.blake3(data).digest()[:8], "big")


def rank_coordinators(shard: int, candidates: Iterable[str], k: int = 2) -> list[str]:
    """The ``k`` best candidates for ``shard``, best first (ties broken by id)."""
    ranked = sorted(set(candidates), key=lambda c: (hrw_score(shard, c), c), reverse=True)
    return ranked[:k]


def coordinators_for(agent_id: str, candidates: Iterable[str]) -> tuple[str | None, str | None]:
    """(primary, backup) coordinators of ``agent_id``'s shard among ``candidates``."""
    ranked = rank_coordinators(shard_of(agent_id), candidates, 2)
    return (ranked[0] if ranked else None, ranked[1] if len(ranked) > 1 else None)


@dataclass(frozen=True, slots=True)
class Registration:
    agent_id: str
    record: dict[str, Any]
    registered_at: float


class RendezvousDirectory:
    """What one coordinator stores: registrations of agents, expiring after ``ttl`` s."""

    def __init__(self, ttl: float = 900.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, Registration] = {}

    def register(self, agent_id: str, record: dict[str, Any]) -> None:
        self._entries[agent_id] = Registration(agent_id, record, self.clock())

    def lookup(self, agent_id: str) -> dict[str, Any] | None:
        entry = self._entries.get(agent_id)
        if entry is None:
            return None
        if self.clock() - entry.registered_at > self.ttl:
            del self._entries[agent_id]
            return None
        return entry.record

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._entries
