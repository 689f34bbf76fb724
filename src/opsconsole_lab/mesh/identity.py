"""Agent identity: Ed25519 keys, signed envelopes, pinned keys and a replay cache.

Wire layout of a signed message (all integers big-endian)::

    b"MSH1" | u8 len(kind) | kind | pubkey(32) | agent_id(32) | u64 timestamp_ns
            | u32 len(payload) | payload | signature(64)

The signature covers every byte before it (the "signed bytes"); the message id is
``BLAKE3(signed bytes)``. Hashing the signed bytes rather than the whole envelope means a
re-signed or malleated copy of the same content is still the same message to the replay
cache. A binary layout (rather than JSON) keeps the per-message overhead at 142 bytes.

Signing and verification use libsodium (PyNaCl) rather than OpenSSL (``cryptography``):
the signatures are the same bytes (Ed25519 is deterministic), but on this 2-core host
libsodium verifies in 55 us against OpenSSL's 116 us and signs in 22 us against 36 us, and
verification was the largest single cost of a mesh worker (37 % of its CPU at 3000 msg/s,
py-spy; see docs/PERFORMANCE.md).
"""

from __future__ import annotations

import os
import struct
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import blake3
from nacl.bindings import crypto_sign, crypto_sign_open, crypto_sign_seed_keypair
from nacl.exceptions import BadSignatureError, CryptoError

MAGIC = b"MSH1"
KEY_LEN = 32
ID_LEN = 32
SIG_LEN = 64
REPLAY_TTL_S = 300.0
_HEAD = struct.Struct(">QI")  # timestamp_ns, payload length


def agent_id_of(public_key: bytes) -> str:
    """Agent id: hex BLAKE3 of the raw 32-byte Ed25519 public key."""
    return blake3.blake3(public_key).hexdigest()


class Rejected(Exception):
    """A message failed verification; ``reason`` is a short machine-readable word."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


def ed25519_sign(secret_key: bytes, data: bytes) -> bytes:
    """The 64-byte detached signature of ``data`` (``secret_key``: libsodium's 64 bytes)."""
    return crypto_sign(data, secret_key)[:SIG_LEN]


class AgentIdentity:
    """An Ed25519 key pair and the agent id derived from its public key."""

    __slots__ = ("_id_bytes", "_key", "agent_id", "public_key")

    def __init__(self, private_key: bytes) -> None:
        """``private_key``: the raw 32-byte Ed25519 private key (the seed of RFC 8032)."""
        if len(private_key) != KEY_LEN:
            raise ValueError("an Ed25519 private key is 32 bytes")
        public_key, self._key = crypto_sign_seed_keypair(private_key)
        self.public_key: bytes = public_key
        self.agent_id: str = agent_id_of(public_key)
        self._id_bytes = bytes.fromhex(self.agent_id)

    @classmethod
    def generate(cls) -> AgentIdentity:
        return cls(os.urandom(KEY_LEN))

    @classmethod
    def from_seed(cls, seed: bytes) -> AgentIdentity:
        """Deterministic identity (tests, reproducible runs): the key is BLAKE3(seed)."""
        return cls(blake3.blake3(seed).digest())

    def sign(self, kind: str, payload: bytes, timestamp_ns: int | None = None) -> bytes:
        """Return the wire bytes of a signed message."""
        ts = time.time_ns() if timestamp_ns is None else timestamp_ns
        signed = encode_signed_bytes(kind, self.public_key, self._id_bytes, ts, payload)
        return signed + ed25519_sign(self._key, signed)

    def __repr__(self) -> str:  # never print key material
        return f"AgentIdentity({self.agent_id[:16]}…)"


def encode_signed_bytes(kind: str, public_key: bytes, agent_id: bytes, timestamp_ns: int,
                        payload: bytes) -> bytes:
    kind_b = kind.encode()
    if len(kind_b) > 255 or len(public_key) != KEY_LEN or len(agent_id) != ID_LEN:
        raise ValueError("kind too long or key/id of the wrong size")
    return b"".join((MAGIC, bytes([len(kind_b)]), kind_b, public_key, agent_id,
                     _HEAD.pack(timestamp_ns, len(payload)), payload))


@dataclass(frozen=True, slots=True)
class SignedMessage:
    """A parsed envelope. ``parse`` only checks the layout; ``verify`` checks the rest."""

    kind: str
    public_key: bytes
    agent_id: str
    timestamp_ns: int
    payload: bytes
    signature: bytes
    signed_bytes: bytes = field(repr=False)

    @property
    def message_id(self) -> bytes:
        return blake3.blake3(self.signed_bytes).digest()

    @classmethod
    def parse(cls, data: bytes) -> SignedMessage:
        try:
            if data[:4] != MAGIC:
                raise Rejected("malformed", "bad magic")
            klen = data[4]
            pos = 5 + klen
            kind = data[5:pos].decode()
            public_key = data[pos:pos + KEY_LEN]
            agent_id = data[pos + KEY_LEN:pos + KEY_LEN + ID_LEN]
            pos += KEY_LEN + ID_LEN
            ts, plen = _HEAD.unpack_from(data, pos)
            pos += _HEAD.size
            end = pos + plen
            if len(data) != end + SIG_LEN:
                raise Rejected("malformed", "length mismatch")
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise Rejected("malformed", type(exc).__name__) from None
        return cls(kind, bytes(public_key), bytes(agent_id).hex(), ts, bytes(data[pos:end]),
                   bytes(data[end:]), bytes(data[:end]))

    def verify_signature(self) -> None:
        """Signature valid and agent id bound to the key, else ``Rejected``."""
        if agent_id_of(self.public_key) != self.agent_id:
            raise Rejected("key_substitution", "agent id is not the hash of the public key")
        try:
            crypto_sign_open(self.signature + self.signed_bytes, self.public_key)
        except (BadSignatureError, CryptoError, ValueError, TypeError):
            raise Rejected("bad_signature") from None


class KeyRegistry:
    """Pinned agent id -> public key. First use pins (TOFU) unless ``strict``.

    With agent ids derived from keys a second key for a known id needs a BLAKE3 collision,
    so this is defence in depth; it matters when ids are pinned from an external directory
    (``pin``) or when ``strict`` limits the mesh to pre-registered agents.
    """

    def __init__(self, strict: bool = False) -> None:
        self.strict = strict
        self._keys: dict[str, bytes] = {}

    def pin(self, agent_id: str, public_key: bytes) -> None:
        known = self._keys.get(agent_id)
        if known is None:
            self._keys[agent_id] = public_key
        elif known != public_key:
            raise Rejected("key_substitution", f"agent {agent_id[:16]} presented another key")

    def check(self, agent_id: str, public_key: bytes) -> None:
        known = self._keys.get(agent_id)
        if known is None:
            if self.strict:
                raise Rejected("unknown_agent", agent_id[:16])
            self._keys[agent_id] = public_key
        elif known != public_key:
            raise Rejected("key_substitution", f"agent {agent_id[:16]} presented another key")

    def __contains__(self, agent_id: object) -> bool:
        return agent_id in self._keys

    def __len__(self) -> int:
        return len(self._keys)


class ReplayCache:
    """Remembers message ids for ``ttl`` seconds; memory is bounded by rate x ttl.

    ``clock`` must be monotonic (default ``time.monotonic``); tests inject a fake one.
    A duplicate does not extend its entry's lifetime.
    """

    def __init__(self, ttl: float = REPLAY_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._expiry: dict[bytes, float] = {}
        self._queue: deque[tuple[float, bytes]] = deque()

    def _purge(self, now: float) -> None:
        queue, expiry = self._queue, self._expiry
        while queue and queue[0][0] <= now:
            expiry.pop(queue.popleft()[1], None)

    def check_and_add(self, message_id: bytes) -> bool:
        """True the first time an id is seen within the TTL, False for a replay."""
        now = self.clock()
        self._purge(now)
        if message_id in self._expiry:
            return False
        until = now + self.ttl
        self._expiry[message_id] = until
        self._queue.append((until, message_id))
        return True

    def __contains__(self, message_id: object) -> bool:
        self._purge(self.clock())
        return message_id in self._expiry

    def __len__(self) -> int:
        self._purge(self.clock())
        return len(self._expiry)


@dataclass
class VerifierStats:
    accepted: int = 0
    rejected: dict[str, int] = field(default_factory=dict)

    def reject(self, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1


class Verifier:
    """The receive pipeline: layout, signature + id binding, pinned key, age, replay.

    ``max_age_s`` bounds how old (or how far in the future) a timestamp may be, so a message
    cannot be replayed once its id has left the replay cache; it defaults to the cache TTL.
    ``None`` disables the check (tests that replay after expiring the cache).
    """

    def __init__(self, registry: KeyRegistry | None = None,
                 replay: ReplayCache | None = None, *,
                 max_age_s: float | None = REPLAY_TTL_S,
                 wall_clock_ns: Callable[[], int] = time.time_ns) -> None:
        self.registry = registry if registry is not None else KeyRegistry()
        self.replay = replay if replay is not None else ReplayCache()
        self.max_age_ns = None if max_age_s is None else int(max_age_s * 1e9)
        self.wall_clock_ns = wall_clock_ns
        self.stats = VerifierStats()

    def verify(self, data: bytes | SignedMessage) -> SignedMessage:
        """Return the verified message or raise ``Rejected`` (and count the reason)."""
        try:
            msg = data if isinstance(data, SignedMessage) else SignedMessage.parse(data)
            mid = msg.message_id
            if mid in self.replay:  # cheap early exit: no signature check for replays
                raise Rejected("replay")
            msg.verify_signature()
            self.registry.check(msg.agent_id, msg.public_key)
            if (self.max_age_ns is not None
                    and abs(self.wall_clock_ns() - msg.timestamp_ns) > self.max_age_ns):
                raise Rejected("stale", "timestamp outside the accepted window")
            if not self.replay.check_and_add(mid):
                raise Rejected("replay")
        except Rejected as exc:
            self.stats.reject(exc.reason)
            raise
        self.stats.accepted += 1
        return msg
