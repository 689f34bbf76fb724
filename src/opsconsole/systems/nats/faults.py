"""NATS fault kinds (lab only): disconnect a leaf from every hub."""

from __future__ import annotations

from ...faults.lab_kinds import LinkFaultKind, proxy_links


class LeafDisconnect(LinkFaultKind):
    id = "nats.leaf-disconnect"
    title = "disconnect a leaf from every hub (cut all its links)"

    def targets(self, ctx):
        return sorted({n.split(".")[1] for n in proxy_links(ctx) if n.startswith("leaf.")})

    def fault_body(self, params):
        return {"cut": True}
