"""The one answer to "is this NATS node (or leaf server) healthy, what is its role?".

The probes decide ``healthy`` with :func:`central_healthy` / :func:`leaf_healthy`; the
console's health pane, the relay pane and ``lab status`` show :func:`node_health` /
:func:`leaf_health` of a probe sample; nothing else decides it.
"""

from __future__ import annotations

from ...core.system import Health, unreachable
from .events import LeafSampled, NatsNodeSampled


def central_healthy(healthz_ok: bool, route_peers: int, cluster_size: int) -> bool:
    """``/healthz`` answers ok and the node has a route to every other node."""
    return healthz_ok and route_peers >= cluster_size - 1


def leaf_healthy(healthz_ok: bool, links: int) -> bool:
    """``/healthz`` answers ok and the leaf server is linked to a hub."""
    return healthz_ok and links > 0



def node_health(s: NatsNodeSampled) -> Health:
    health = ("healthy" if s.healthy else unreachable(s.reason) if not s.reachable
              else "degraded")
    role = ("—" if not s.reachable else
            "JS leader" if s.js_meta_leader == s.name else "member")
    return Health(s.name, s.reachable and s.healthy, health, role,
                  {"routes": str(s.routes), "leafnodes": str(s.leafnodes)})


def leaf_health(s: LeafSampled) -> Health:
    health = ("healthy" if s.healthy else unreachable(s.reason) if not s.reachable
              else "degraded")
    return Health(s.name, s.reachable and s.healthy, health,
                  f"leaf of {s.hub}" if s.reachable and s.hub else "—", {"user": s.user})
