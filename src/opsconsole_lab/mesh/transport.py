"""Gossip transport: one connection hosts many agents; a link filter cuts paths between them.

Subjects (``prefix`` defaults to ``mesh``):

- ``mesh.<run>.gossip``   broadcast of signed CRDT operations
- ``mesh.<run>.presence`` broadcast of presence beacons (and goodbyes)
- ``mesh.<run>.ae.<agent>``  direct anti-entropy messages to one agent
- ``mesh.<run>.rdv.<agent>`` direct rendezvous messages to one agent

A transport subscribes once per subject family (``ae.*``, not one subscription per agent)
and fans each message out in-process to its attached agents. The receive pipeline runs
once per message per transport, not per agent: parse, pick local receivers (minus the
sender, minus links the filter cuts), then -- only if someone is left -- verify signature,
pinned key, age and replay (``Verifier``), decode the payload once, and hand the same
``Delivery`` to every receiver. Handlers must not mutate it.

Partitions, two ways:

- Network: give the agents of each group a transport on a different NATS server and cut
  the route between the servers; agents take their transport (hence connection) as a
  parameter, and nothing here needs to know.
- Filter: ``transport.block(group)`` drops every message between ``group`` and the other
  agents, on every channel, at the receiving transport (direct messages also at the
  sender). Agents hosted by other processes are only cut if those processes' transports get
  the same ``block`` (or share one ``LinkFilter`` object within a process).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from .crdt import Op
from .identity import Rejected, SignedMessage, Verifier

log = logging.getLogger(__name__)

Channel = Literal["gossip", "presence", "ae", "rdv"]
BROADCAST: tuple[Channel, ...] = ("gossip", "presence")
DIRECT: tuple[Channel, ...] = ("ae", "rdv")
Direction = Literal["both", "in", "out"]
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


@dataclass(frozen=True)
class Subjects:
    run: str
    prefix: str = "mesh"

    def __post_init__(self) -> None:
        for token in (self.run, *self.prefix.split(".")):
            if not _TOKEN.match(token):
                raise ValueError(f"invalid subject token {token!r} (letters, digits, _ and -)")

    def broadcast(self, channel: Channel) -> str:
        return f"{self.prefix}.{self.run}.{channel}"

    def direct(self, channel: Channel, agent_id: str) -> str:
        return f"{self.prefix}.{self.run}.{channel}.{agent_id}"

    def wildcard(self, channel: Channel) -> str:
        return f"{self.prefix}.{self.run}.{channel}.*"

    @property
    def gossip(self) -> str:
        return self.broadcast("gossip")

    @property
    def presence(self) -> str:
        return self.broadcast("presence")


@dataclass(frozen=True)
class Cut:
    """Links cut between ``group`` and everyone else.

    ``both``: nothing crosses; ``in``: the group hears nobody outside (its own messages
    still get out); ``out``: nobody outside hears the group.
    """

    group: frozenset[str]
    direction: Direction = "both"

    def blocks(self, sender: str, receiver: str) -> bool:
        s_in, r_in = sender in self.group, receiver in self.group
        if self.direction == "both":
            return s_in != r_in
        if self.direction == "in":
            return r_in and not s_in
        return s_in and not r_in


class LinkFilter:
    """The set of active cuts; share one object between transports of one process."""

    def __init__(self) -> None:
        self._cuts: list[Cut] = []

    def block(self, agents: Iterable[str], direction: Direction = "both") -> Cut:
        cut = Cut(frozenset(agents), direction)
        self._cuts.append(cut)
        return cut

    def unblock(self, cut: Cut | None = None) -> None:
        """Remove one cut, or all of them."""
        if cut is None:
            self._cuts.clear()
        else:
            with contextlib.suppress(ValueError):
                self._cuts.remove(cut)

    @property
    def cuts(self) -> tuple[Cut, ...]:
        return tuple(self._cuts)

    def allows(self, sender: str, receiver: str) -> bool:
        return not any(c.blocks(sender, receiver) for c in self._cuts)


@dataclass(frozen=True, slots=True)
class Delivery:
    """A verified message handed to agents. ``body`` is an ``Op`` for kind ``op``, else
    the decoded JSON object."""

    channel: Channel
    msg: SignedMessage
    body: Any
    size: int


Handler = Callable[[Delivery], None]


@dataclass
class TransportStats:
    published: int = 0
    published_bytes: int = 0
    received: int = 0
    received_bytes: int = 0
    deliveries: int = 0
    dropped_blocked: int = 0
    handler_errors: int = 0
    rejected: dict[str, int] = field(default_factory=dict)


def _no_constants(name: str) -> Any:
    raise ValueError(f"non-finite number {name} in payload")


def decode_body(msg: SignedMessage) -> Any:
    """The payload as JSON (an ``Op`` for kind ``op``); ``ValueError`` if malformed."""
    body = json.loads(msg.payload, parse_constant=_no_constants)
    if not isinstance(body, dict):
        raise ValueError("payload is not an object")
    if msg.kind == "op":
        return Op.from_json(body, author=msg.agent_id)
    return body


class MeshTransport(ABC):
    """Hosts agents' subscriptions on one connection. Subclasses move bytes."""

    def __init__(self, run: str, *, verifier: Verifier | None = None,
                 link_filter: LinkFilter | None = None, prefix: str = "mesh") -> None:
        self.subjects = Subjects(run, prefix)
        self.verifier = verifier if verifier is not None else Verifier()
        self.link_filter = link_filter if link_filter is not None else LinkFilter()
        self.stats = TransportStats()
        self._handlers: dict[str, Handler] = {}

    # -- agents ----------------------------------------------------------------------------

    def attach(self, agent_id: str, handler: Handler) -> None:
        self._handlers[agent_id] = handler

    def detach(self, agent_id: str) -> None:
        self._handlers.pop(agent_id, None)

    @property
    def agent_ids(self) -> set[str]:
        return set(self._handlers)

    # -- partitions --------------------------------------------------------------------------

    def block(self, agents: Iterable[str], direction: Direction = "both") -> Cut:
        """Cut links between ``agents`` and all others (see ``Cut``); returns the cut."""
        return self.link_filter.block(agents, direction)

    def unblock(self, cut: Cut | None = None) -> None:
        self.link_filter.unblock(cut)

    # -- sending -------------------------------------------------------------------------------

    async def publish(self, channel: Channel, data: bytes) -> None:
        """Broadcast on ``gossip`` or ``presence``."""
        if channel not in BROADCAST:
            raise ValueError(f"{channel} is not a broadcast channel")
        await self._send_bytes(self.subjects.broadcast(channel), data)

    async def send(self, channel: Channel, sender: str, target: str, data: bytes) -> bool:
        """Direct message on ``ae`` or ``rdv``; False when a cut drops it at the sender."""
        if channel not in DIRECT:
            raise ValueError(f"{channel} is not a direct channel")
        if not self.link_filter.allows(sender, target):
            self.stats.dropped_blocked += 1
            return False
        await self._send_bytes(self.subjects.direct(channel, target), data)
        return True

    async def _send_bytes(self, subject: str, data: bytes) -> None:
        self.stats.published += 1
        self.stats.published_bytes += len(data)
        await self._publish(subject, data)

    @abstractmethod
    async def _publish(self, subject: str, data: bytes) -> None: ...

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Subscribe (transports that need it)."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Unsubscribe; the connection itself belongs to the caller."""

    # -- receiving -----------------------------------------------------------------------------

    def _reject(self, reason: str) -> None:
        self.stats.rejected[reason] = self.stats.rejected.get(reason, 0) + 1

    def receive(self, channel: Channel, target: str | None, data: bytes) -> int:
        """Run the receive pipeline for raw bytes; returns how many agents got the message."""
        stats = self.stats
        stats.received += 1
        stats.received_bytes += len(data)
        try:
            msg = SignedMessage.parse(data)
        except Rejected as exc:
            self._reject(exc.reason)
            return 0
        sender = msg.agent_id
        if target is None:
            receivers = [h for a, h in self._handlers.items() if a != sender]
            if self.link_filter.cuts:
                allowed = [h for a, h in self._handlers.items()
                           if a != sender and self.link_filter.allows(sender, a)]
                stats.dropped_blocked += len(receivers) - len(allowed)
                receivers = allowed
        else:
            handler = self._handlers.get(target)
            if handler is None:
                return 0  # hosted by another transport
            if not self.link_filter.allows(sender, target):
                stats.dropped_blocked += 1
                return 0
            receivers = [handler]
        if not receivers:
            return 0
        try:
            self.verifier.verify(msg)
            body = decode_body(msg)
        except Rejected as exc:
            self._reject(exc.reason)
            return 0
        except ValueError:
            self._reject("malformed_payload")
            return 0
        delivery = Delivery(channel, msg, body, len(data))
        for handler in receivers:
            try:
                handler(delivery)
            except Exception:
                stats.handler_errors += 1
                log.exception("mesh handler failed on a %s message", msg.kind)
        stats.deliveries += len(receivers)
        return len(receivers)


async def server_has_seen(nc: Any, timeout: float = 5.0) -> None:
    """Return once the server processed every command sent so far (e.g. a new SUB).

    One ``flush()`` is not enough with nats-py 2.16: its PING is written straight to the
    socket (``Client._send_ping``) while commands such as a fresh SUB may still wait in the
    client's pending buffer for the flusher task, so the PONG can come back before the
    server saw the SUB (measured: ~4 % of subscribe+flush pairs on a new connection missed
    a message published right after). During the first round trip the flusher writes the
    pending buffer, so the second PING goes out behind it.
    """
    await nc.flush(timeout=timeout)
    await nc.flush(timeout=timeout)


class NatsTransport(MeshTransport):
    """Transport over one nats-py connection (shared by every agent attached here)."""

    def __init__(self, nc: Any, run: str, **kwargs: Any) -> None:
        super().__init__(run, **kwargs)
        self.nc = nc
        self._subs: list[Any] = []

    async def start(self) -> None:
        if self._subs:
            return
        for channel in BROADCAST:
            self._subs.append(await self.nc.subscribe(
                self.subjects.broadcast(channel), cb=self._broadcast_cb(channel)))
        for channel in DIRECT:
            self._subs.append(await self.nc.subscribe(
                self.subjects.wildcard(channel), cb=self._direct_cb(channel)))
        await server_has_seen(self.nc)

    def _broadcast_cb(self, channel: Channel) -> Callable[[Any], Any]:
        async def cb(msg: Any) -> None:
            self.receive(channel, None, msg.data)
        return cb

    def _direct_cb(self, channel: Channel) -> Callable[[Any], Any]:
        async def cb(msg: Any) -> None:
            self.receive(channel, msg.subject.rsplit(".", 1)[-1], msg.data)
        return cb

    async def _publish(self, subject: str, data: bytes) -> None:
        await self.nc.publish(subject, data)

    async def flush(self, timeout: float = 5.0) -> None:
        await self.nc.flush(timeout=timeout)

    async def close(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
