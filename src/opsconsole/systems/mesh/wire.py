"""The mesh's wire formats as docs/contracts/mesh.md writes them: the pack's own codec.

The `mesh` pack hosts the reference agents in process (until issue #20 brings the real x0x
daemons), but what it reads off the wire and what it forges onto it goes through this
module, not the reference's encoder, so a layout bug in the agents cannot agree with itself.

Envelope (integers big-endian)::

    b"MSH1" | u8 len(kind) | kind | public key (32) | agent id (32) | u64 timestamp_ns
            | u32 len(payload) | payload | Ed25519 signature (64) of every byte before it

agent id = BLAKE3(public key); message id = BLAKE3(the signed bytes).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass

import blake3
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

MAGIC = b"MSH1"
KEY_LEN = ID_LEN = 32
SIG_LEN = 64
_TAIL = struct.Struct(">QI")  # timestamp_ns, payload length


class Malformed(ValueError):
    """The bytes are not an envelope of the documented layout."""


@dataclass(frozen=True)
class Envelope:
    kind: str
    public_key: bytes
    agent_id: str  # hex
    timestamp_ns: int
    payload: bytes
    signature: bytes
    signed: bytes  # every byte before the signature

    @property
    def message_id(self) -> bytes:
        return blake3.blake3(self.signed).digest()


def parse(data: bytes) -> Envelope:
    """The envelope in ``data``; ``Malformed`` unless the layout and lengths are exact."""
    if len(data) < len(MAGIC) + 1 or data[:4] != MAGIC:
        raise Malformed("not an MSH1 envelope")
    kind_end = 5 + data[4]
    key_end = kind_end + KEY_LEN
    id_end = key_end + ID_LEN
    head_end = id_end + _TAIL.size
    if len(data) < head_end:
        raise Malformed("truncated header")
    timestamp_ns, length = _TAIL.unpack_from(data, id_end)
    signed_end = head_end + length
    if len(data) != signed_end + SIG_LEN:
        raise Malformed("length mismatch")
    try:
        kind = data[5:kind_end].decode()
    except UnicodeDecodeError:
        raise Malformed("kind is not UTF-8") from None
    return Envelope(kind, bytes(data[kind_end:key_end]), bytes(data[key_end:id_end]).hex(),
                    timestamp_ns, bytes(data[head_end:signed_end]), bytes(data[signed_end:]),
                    bytes(data[:signed_end]))


def signed_bytes(kind: str, public_key: bytes, agent_id: str, timestamp_ns: int,
                 payload: bytes) -> bytes:
    """The bytes an envelope's signature covers (``agent_id`` in hex)."""
    kind_b = kind.encode()
    if len(kind_b) > 255 or len(public_key) != KEY_LEN or len(bytes.fromhex(agent_id)) != ID_LEN:
        raise ValueError("kind longer than 255 bytes, or a key or id of the wrong size")
    return (MAGIC + bytes([len(kind_b)]) + kind_b + public_key + bytes.fromhex(agent_id)
            + _TAIL.pack(timestamp_ns, len(payload)) + payload)


def agent_id_of(public_key: bytes) -> str:
    return blake3.blake3(public_key).hexdigest()


class Signer:
    """An Ed25519 key of the tester's own (``cryptography``, not the agents' libsodium)."""

    def __init__(self) -> None:
        self._key = Ed25519PrivateKey.generate()
        self.public_key = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    def envelope(self, kind: str, agent_id: str, timestamp_ns: int, payload: bytes) -> bytes:
        """An envelope signed with this key in the name of ``agent_id`` (any id: a forger
        claims someone else's)."""
        body = signed_bytes(kind, self.public_key, agent_id, timestamp_ns, payload)
        return body + self._key.sign(body)


def add_op_payload(seq: int, ts_us: int, task: str, title: str) -> bytes:
    """A gossiped ``add`` op (the author is the envelope's signer, so it is left out):
    a new task with its own position node after the end of the list."""
    return json.dumps({"k": "add", "s": seq, "ts": ts_us, "t": task, "n": seq,
                       "p": [0, "$"], "f": {"title": title}}, separators=(",", ":")).encode()
