"""Rendezvous shards and coordinator failover; presence TTL; friend-of-friend queries."""

from __future__ import annotations

import random

import blake3

from opsconsole_lab.mesh.identity import AgentIdentity
from opsconsole_lab.mesh.presence import PresenceView, foaf_query
from opsconsole_lab.mesh.rendezvous import (
    RendezvousDirectory,
    coordinators_for,
    rank_coordinators,
    shard_of,
)

IDS = [AgentIdentity.from_seed(f"agent-{i}".encode()).agent_id for i in range(40)]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_shard_is_blake3_of_domain_and_raw_id_masked_to_16_bits() -> None:
    agent = IDS[0]
    digest = blake3.blake3(b"saorsa-rendezvous" + bytes.fromhex(agent)).digest()
    assert shard_of(agent) == int.from_bytes(digest[-2:], "big")  # last 2 bytes, big-endian
    assert shard_of(agent) == int.from_bytes(digest, "big") & 0xFFFF
    assert shard_of(bytes.fromhex(agent)) == shard_of(agent)
    # a fixed vector, so a change of byte order or encoding cannot slip through
    assert shard_of("00" * 32) == int.from_bytes(
        blake3.blake3(b"saorsa-rendezvous" + bytes(32)).digest()[30:], "big")
    shards = {shard_of(a) for a in IDS}
    assert all(0 <= s <= 0xFFFF for s in shards) and len(shards) > 35


def test_shard_assignment_is_deterministic_across_calls_and_processes() -> None:
    first = [shard_of(a) for a in IDS]
    assert first == [shard_of(a) for a in IDS]
    rng = random.Random(7)
    shuffled = IDS[:]
    rng.shuffle(shuffled)
    assert {a: shard_of(a) for a in shuffled} == dict(zip(IDS, first, strict=True))


def test_coordinator_ranking_is_deterministic_and_order_independent() -> None:
    pool = IDS[:10]
    for shard in (0, 1, 0xFFFF, shard_of(IDS[20])):
        ranked = rank_coordinators(shard, pool, 10)
        assert sorted(ranked) == sorted(pool)
        assert rank_coordinators(shard, reversed(pool), 10) == ranked
        assert rank_coordinators(shard, pool) == ranked[:2]


def test_failover_promotes_the_backup_and_leaves_other_shards_alone() -> None:
    pool = set(IDS[:10])
    target = IDS[30]
    primary, backup = coordinators_for(target, pool)
    assert primary and backup and primary != backup
    after = coordinators_for(target, pool - {primary})
    assert after[0] == backup  # the backup takes over
    # HRW: shards whose coordinators did not include the dead one keep their coordinators
    for agent in IDS[10:]:
        before = coordinators_for(agent, pool)
        if primary not in before:
            assert coordinators_for(agent, pool - {primary}) == before
    assert coordinators_for(target, {IDS[0]}) == (IDS[0], None)
    assert coordinators_for(target, set()) == (None, None)


def test_directory_lookup_and_expiry() -> None:
    clock = FakeClock()
    directory = RendezvousDirectory(ttl=30.0, clock=clock)
    directory.register(IDS[1], {"host": "w1"})
    assert directory.lookup(IDS[1]) == {"host": "w1"} and directory.lookup(IDS[2]) is None
    clock.now = 31.0
    assert directory.lookup(IDS[1]) is None and IDS[1] not in directory


def test_presence_ttl_online_offline_and_goodbye() -> None:
    clock = FakeClock()
    view = PresenceView(default_ttl=5.0, clock=clock)
    assert PresenceView().default_ttl == 900.0  # 15 minutes unless configured
    assert view.observe("a", ["b"]) is True
    assert view.observe("a", ["b"]) is False  # already online
    view.observe("b", ttl=2.0)  # the sender's own TTL wins
    assert view.online() == {"a", "b"} and view.status("zzz") == "unknown"
    clock.now = 2.5
    assert view.online() == {"a"} and view.status("b") == "offline"
    clock.now = 5.0
    assert view.online() == set() and view.offline() == {"a", "b"}
    assert view.observe("a") is True  # back online
    view.leave("a")
    assert not view.is_online("a")
    assert view.neighbour_table(online_only=False)["b"] == frozenset()


# a - b - c - d - e, plus b - f
GRAPH = {"a": ["b"], "b": ["a", "c", "f"], "c": ["b", "d"], "d": ["c", "e"],
         "e": ["d"], "f": ["b"]}


def test_foaf_ttl_limits_hops() -> None:
    one = foaf_query(GRAPH, "a", "b", ttl=1)
    assert one.found and one.hops == 1 and one.path == ("a", "b")
    assert not foaf_query(GRAPH, "a", "c", ttl=1).found  # TTL=1: neighbours only
    three = foaf_query(GRAPH, "a", "d", ttl=3)
    assert three.found and three.hops == 3 and three.path == ("a", "b", "c", "d")
    assert not foaf_query(GRAPH, "a", "e", ttl=3).found
    assert foaf_query(GRAPH, "a", "e", ttl=4).hops == 4
    assert not foaf_query(GRAPH, "a", "nobody", ttl=10).found
    assert foaf_query(GRAPH, "a", "a", ttl=0).found


def test_foaf_fanout_bounds_messages_deterministically() -> None:
    star = {"hub": [f"n{i}" for i in range(20)], **{f"n{i}": ["hub", f"m{i}"]
                                                   for i in range(20)}}
    full = foaf_query(star, "hub", "m7", ttl=2)
    assert full.found and full.hops == 2
    narrow = [foaf_query(star, "hub", "m7", ttl=2, fanout=3, query_id=q) for q in
              (b"q1", b"q2", b"q3", b"q4")]
    assert all(r.messages <= 3 + 3 for r in narrow)
    assert foaf_query(star, "hub", "m7", ttl=2, fanout=3, query_id=b"q1") == narrow[0]
    # a direct neighbour is always found, fanout or not
    assert foaf_query(star, "hub", "n19", ttl=1, fanout=1).found
