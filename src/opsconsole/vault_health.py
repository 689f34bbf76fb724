"""One-shot Vault cluster health (`opsconsole vault health`), from the console's probe."""

from __future__ import annotations

from typing import Any

import aiohttp

from .config import Inventory
from .core.events import VaultNodeSampled
from .errors import UserError
from .probes.vault import VaultClusterProbe


async def cluster_health(inv: Inventory, lab_state_dir: str | None = None
                         ) -> tuple[list[dict[str, Any]], bool]:
    if inv.lab is not None:
        from .lab import Lab
        from .lab.inventory import lab_inventory

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
        ok = s.reachable and s.initialized and s.sealed is False
        health = ("healthy" if ok else "unreachable" if not s.reachable else
                  "SEALED" if s.sealed else "not initialised")
        role = ("leader" if s.leader else "standby" if s.reachable and s.standby else "—")
        rows.append({"name": s.name, "api_addr": addrs[s.name], "healthy": ok,
                     "health": health, "role": role,
                     "sealed": "—" if s.sealed is None else ("yes" if s.sealed else "no"),
                     "voter": "yes" if s.voter else "no", "version": s.version or "—"})
    leaders = sum(1 for s in samples if isinstance(s, VaultNodeSampled) and s.leader)
    return rows, all(r["healthy"] for r in rows) and leaders == 1
