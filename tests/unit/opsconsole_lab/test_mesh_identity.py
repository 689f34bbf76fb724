"""Mesh identity: signed envelopes, key binding and pinning, replay cache with a fake clock."""

from __future__ import annotations

import blake3
import pytest

from opsconsole_lab.mesh.identity import (
    AgentIdentity,
    KeyRegistry,
    Rejected,
    ReplayCache,
    SignedMessage,
    Verifier,
    agent_id_of,
    ed25519_sign,
    encode_signed_bytes,
)


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def reject_reason(verifier: Verifier, data: bytes) -> str:
    with pytest.raises(Rejected) as info:
        verifier.verify(data)
    return info.value.reason


def test_identity_id_is_blake3_of_raw_public_key() -> None:
    ident = AgentIdentity.from_seed(b"alice")
    assert len(ident.public_key) == 32
    assert ident.agent_id == blake3.blake3(ident.public_key).hexdigest()
    assert AgentIdentity.from_seed(b"alice").agent_id == ident.agent_id
    assert AgentIdentity.from_seed(b"bob").agent_id != ident.agent_id
    assert "alice" not in repr(ident) and ident.agent_id[:16] in repr(ident)


def test_valid_message_is_accepted_with_its_fields() -> None:
    ident = AgentIdentity.generate()
    data = ident.sign("op", b'{"k":"add"}', timestamp_ns=123)
    verifier = Verifier(max_age_s=None)
    msg = verifier.verify(data)
    assert (msg.kind, msg.agent_id, msg.public_key, msg.timestamp_ns, msg.payload) == (
        "op", ident.agent_id, ident.public_key, 123, b'{"k":"add"}')
    assert msg.message_id == blake3.blake3(data[:-64]).digest()
    assert verifier.stats.accepted == 1 and verifier.stats.rejected == {}


def test_invalid_signature_is_rejected() -> None:
    data = bytearray(AgentIdentity.generate().sign("op", b"payload"))
    data[-1] ^= 0x01
    verifier = Verifier()
    assert reject_reason(verifier, bytes(data)) == "bad_signature"
    assert verifier.stats.rejected == {"bad_signature": 1}


def test_signature_of_another_key_is_rejected() -> None:
    alice, mallory = AgentIdentity.generate(), AgentIdentity.generate()
    data = alice.sign("op", b"payload")
    forged = data[:-64] + mallory.sign("op", b"payload")[-64:]
    assert reject_reason(Verifier(), forged) == "bad_signature"


@pytest.mark.parametrize("where", ["payload", "timestamp", "kind"])
def test_tampered_message_is_rejected(where: str) -> None:
    ident = AgentIdentity.generate()
    data = bytearray(ident.sign("op", b'{"title":"pay invoice"}'))
    offset = {"payload": len(data) - 64 - 3, "timestamp": 5 + 2 + 64 + 3, "kind": 5}[where]
    data[offset] ^= 0x20
    assert reject_reason(Verifier(), bytes(data)) == "bad_signature"


def test_key_substitution_is_detected() -> None:
    alice, mallory = AgentIdentity.generate(), AgentIdentity.generate()
    # Mallory signs with her key but claims Alice's agent id.
    signed = encode_signed_bytes("op", mallory.public_key, bytes.fromhex(alice.agent_id),
                                 1, b"x")
    forged = signed + ed25519_sign(mallory._key, signed)
    assert reject_reason(Verifier(max_age_s=None), forged) == "key_substitution"


def test_pinned_key_registry_detects_a_second_key_for_a_known_id() -> None:
    alice, mallory = AgentIdentity.generate(), AgentIdentity.generate()
    registry = KeyRegistry()
    registry.pin(alice.agent_id, mallory.public_key)  # e.g. a directory entry, now stale
    verifier = Verifier(registry)
    assert reject_reason(verifier, alice.sign("op", b"x")) == "key_substitution"
    with pytest.raises(Rejected, match="key_substitution"):
        registry.pin(alice.agent_id, alice.public_key)


def test_strict_registry_rejects_unknown_agents_and_first_use_pins() -> None:
    alice, bob = AgentIdentity.generate(), AgentIdentity.generate()
    strict = KeyRegistry(strict=True)
    strict.pin(alice.agent_id, alice.public_key)
    verifier = Verifier(strict)
    verifier.verify(alice.sign("op", b"x"))
    assert reject_reason(verifier, bob.sign("op", b"x")) == "unknown_agent"
    tofu = KeyRegistry()
    Verifier(tofu).verify(bob.sign("op", b"x"))
    assert bob.agent_id in tofu


def test_replayed_message_is_ignored() -> None:
    ident = AgentIdentity.generate()
    data = ident.sign("op", b"x")
    verifier = Verifier()
    verifier.verify(data)
    assert reject_reason(verifier, data) == "replay"
    assert verifier.stats.accepted == 1 and verifier.stats.rejected == {"replay": 1}
    verifier.verify(ident.sign("op", b"x"))  # same content, new timestamp: a new message


def test_replay_cache_expires_entries_after_ttl_with_an_injected_clock() -> None:
    clock = FakeClock()
    cache = ReplayCache(ttl=300.0, clock=clock)
    assert cache.ttl == 300.0 and ReplayCache().ttl == 300.0
    assert cache.check_and_add(b"a")
    clock.now += 100
    assert cache.check_and_add(b"b")
    assert not cache.check_and_add(b"a")
    clock.now += 199.9
    assert not cache.check_and_add(b"a") and len(cache) == 2
    clock.now += 0.2  # a is 300.1 s old, b 200.1 s
    assert b"a" not in cache and b"b" in cache and len(cache) == 1
    assert cache.check_and_add(b"a")
    clock.now += 1000
    assert len(cache) == 0  # memory is bounded by rate x ttl


def test_expired_replay_is_accepted_only_without_an_age_bound() -> None:
    ident = AgentIdentity.generate()
    clock = FakeClock()
    wall = [10**18]
    data = ident.sign("op", b"x", timestamp_ns=wall[0])
    bounded = Verifier(replay=ReplayCache(300.0, clock), wall_clock_ns=lambda: wall[0])
    unbounded = Verifier(replay=ReplayCache(300.0, clock), max_age_s=None)
    for verifier in (bounded, unbounded):
        verifier.verify(data)
        assert reject_reason(verifier, data) == "replay"
    clock.now += 301
    wall[0] += 301 * 10**9
    unbounded.verify(data)  # the cache forgot it
    assert reject_reason(bounded, data) == "stale"  # the timestamp window did not


def test_malformed_envelopes_are_rejected() -> None:
    data = AgentIdentity.generate().sign("op", b"x")
    verifier = Verifier()
    for bad in (b"", b"MSH1", data[:-1], data + b"\x00", b"XXXX" + data[4:]):
        assert reject_reason(verifier, bad) == "malformed"
    assert verifier.stats.rejected == {"malformed": 5}


def test_parse_round_trip_and_id_binding() -> None:
    ident = AgentIdentity.generate()
    msg = SignedMessage.parse(ident.sign("ae.sync", b"{}", timestamp_ns=5))
    assert msg.kind == "ae.sync" and agent_id_of(msg.public_key) == msg.agent_id
    msg.verify_signature()
