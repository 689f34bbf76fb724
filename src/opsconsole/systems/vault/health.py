"""The one answer to "is this Vault node healthy, what is its role?".

The console's health pane, ``opsconsole vault health`` (:func:`cluster_rows`) and ``lab
status`` all show :func:`node_health`; nothing else decides it.
"""

from __future__ import annotations

from typing import Any

from ...core.system import Health, unreachable
from .events import VaultNodeSampled


def node_health(s: VaultNodeSampled) -> Health:
    """Healthy = reachable, initialised and unsealed; role from the raft view."""
    ok = s.reachable and s.initialized and s.sealed is False
    health = ("healthy" if ok else unreachable(s.reason) if not s.reachable else
              "SEALED" if s.sealed else "not initialised")
    role = "leader" if s.leader else "standby" if s.reachable and s.standby else "—"
    return Health(s.name, ok, health, role, {
        "sealed": "—" if s.sealed is None else ("yes" if s.sealed else "no"),
        "voter": "yes" if s.voter else "no", "version": s.version or "—"})


def cluster_rows(samples: list[Any], addrs: dict[str, str]) -> tuple[list[dict[str, Any]], bool]:
    """A row per node and whether the cluster is healthy (every node healthy and exactly
    one leader), from one probe sample of every node."""
    rows = []
    for s in samples:
        assert isinstance(s, VaultNodeSampled)
        h = node_health(s)
        rows.append({"name": s.name, "api_addr": addrs[s.name], "healthy": h.healthy,
                     "health": h.health, "role": h.role, **h.detail})
    leaders = sum(1 for s in samples if isinstance(s, VaultNodeSampled) and s.leader)
    return rows, all(r["healthy"] for r in rows) and leaders == 1
