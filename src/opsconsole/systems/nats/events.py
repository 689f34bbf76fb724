"""The NATS events (registered with the event vocabulary on import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...core.events import Event


@dataclass(frozen=True, kw_only=True)
class NatsNodeSampled(Event):
    """One central NATS node, from /varz /routez /leafz /healthz /jsz."""

    kind: ClassVar[str] = "nats.node"
    name: str
    reachable: bool
    reason: str = ""
    healthy: bool = False
    connections: int = 0
    routes: int = 0
    leafnodes: int = 0
    in_msgs: int = 0
    out_msgs: int = 0
    in_bytes: int = 0
    out_bytes: int = 0
    slow_consumers: int = 0
    mem_bytes: int = 0
    cpu_percent: float = 0.0
    uptime: str = ""
    js_meta_leader: str = ""


@dataclass(frozen=True, kw_only=True)
class LeafSampled(Event):
    """One leaf (vault-instance) NATS server and its link to central.

    ``to_local_msgs`` / ``to_central_msgs`` are the link's cumulative counters
    (messages received from / sent to the hub); the reducer turns them into rates.
    """

    kind: ClassVar[str] = "nats.leaf"
    name: str
    user: str
    reachable: bool
    reason: str = ""
    healthy: bool = False
    hub: str = ""
    connections: int = 0
    to_local_msgs: int = 0
    to_central_msgs: int = 0


@dataclass(frozen=True, kw_only=True)
class CanaryReport(Event):
    """Cumulative relay-canary counters for one leaf and direction (c2l or l2c)."""

    kind: ClassVar[str] = "canary.report"
    leaf: str
    path: str
    sent: int
    delivered: int
    lost: int
    settled: int = 0  # fate known (older than the grace window): settled = delivered + lost
    duplicated: int
    reordered: int
    p50_ms: float | None = None
    p99_ms: float | None = None
