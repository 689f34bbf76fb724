"""The one answer to "is this Vault node healthy, what is its role?".

The console's health pane, ``opsconsole vault health`` and ``lab status`` all show
:func:`node_health`; nothing else decides it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import aiohttp

from ...core.system import Health
from ...errors import UserError
from .events import VaultNodeSampled
from .probe import VaultClusterProbe

if TYPE_CHECKING:
    from ...config import InventoryBase


def node_health(s: VaultNodeSampled) -> Health:
    """Healthy = reachable, initialised and unsealed; role from the raft view."""
    ok = s.reachable and s.initialized and s.sealed is False
    health = ("healthy" if ok else "unreachable" if not s.reachable else
              "SEALED" if s.sealed else "not initialised")
    role = "leader" if s.leader else "standby" if s.reachable and s.standby else "—"
    return Health(s.name, ok, health, role, {
        "sealed": "—" if s.sealed is None else ("yes" if s.sealed else "no"),
        "voter": "yes" if s.voter else "no", "version": s.version or "—"})


async def cluster_health(inv: InventoryBase, lab_state_dir: str | None = None
                         ) -> tuple[list[dict[str, Any]], bool]:
    """Sample the cluster once: a row per node and whether the cluster is healthy (every
    node healthy and exactly one leader)."""
    if inv.lab is not None:
        from ...lab import Lab
        from ...lab.inventory import lab_inventory

        inv = lab_inventory(Lab(inv.lab, state_dir=lab_state_dir), inv)
    if inv.vault is None:
        raise UserError(f"{inv.source or inv.name}: no [vault] target (and no lab running)",
                        exit_code=2)
    async with aiohttp.ClientSession() as http:
        samples = await VaultClusterProbe(http, inv.vault, inv.vault.token).sample()
    addrs = {n.name: n.api_addr for n in inv.vault.nodes}
    rows = []
    for s in samples:
        assert isinstance(s, VaultNodeSampled)
        h = node_health(s)
        rows.append({"name": s.name, "api_addr": addrs[s.name], "healthy": h.healthy,
                     "health": h.health, "role": h.role, **h.detail})
    leaders = sum(1 for s in samples if isinstance(s, VaultNodeSampled) and s.leader)
    return rows, all(r["healthy"] for r in rows) and leaders == 1
