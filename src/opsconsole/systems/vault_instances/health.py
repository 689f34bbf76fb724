"""The one answer to "is this vault instance healthy?": its EC2 state, its own NATS
server, its link to central and its Vault Manager.

The instance's own view comes from the provisioning service (``/admin/instances``); when
that says nothing about its NATS server but the inventory knows the instance's leaf, the
leaf's probe sample answers instead. The instances pane shows :func:`instance_health`.
"""

from __future__ import annotations

from typing import Any

from ...core.system import Health
from .events import InstanceSampled

DASH = "—"


def instance_health(inst: InstanceSampled, leaf: Any = None) -> Health:
    """``leaf``: the probe sample (``reachable``, ``hub``) of the leaf server the inventory
    knows for this instance's owner, if any (NATS's own event: no import of it here)."""
    local, link = inst.local_nats, inst.central_link
    if leaf is not None and local == DASH:  # the instance's NATS is a known leaf
        local = "ok" if leaf.reachable else "down"
        link = f"→{leaf.hub}" if leaf.reachable and leaf.hub else "down"
    linked = link.startswith("→") or link == "connected"
    healthy = (inst.state == "running" and local in ("ok", "running") and linked
               and inst.manager in ("ok", "healthy"))
    health = ("healthy" if healthy else inst.state if inst.state != "running" else
              "unknown" if DASH in (local, link, inst.manager) else
              "NATS down" if local not in ("ok", "running") else
              "no central link" if not linked else "manager " + inst.manager)
    return Health(inst.instance_id, healthy, health, f"owner {inst.owner}",
                  {"nats": local, "link": link, "manager": inst.manager})

