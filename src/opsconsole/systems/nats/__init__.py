"""NATS: the central cluster and its leaf relays (probes, relay canary, leaf faults) and
the NATS half of the ``lab-faults`` pack."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...core.system import ConfigSection, Health, Loc, ProbeContext, System
from . import events  # noqa: F401 - registers the NATS event kinds
from .config import LeafNode, NatsCluster

if TYPE_CHECKING:
    from ...core.state import State
    from ...faults.kinds import FaultKind
    from ...probes.base import Probe
    from ...scenarios.engine import Scenario
    from .state import NatsSlice


class NatsSystem(System):
    name = "nats"
    title = "NATS cluster and leaf relays"
    order = 10

    def config_sections(self) -> Mapping[str, ConfigSection]:
        return {"nats": ConfigSection(list[NatsCluster], [], "[[nats]]", is_target=True,
                                      lab_supplied=True),
                "leaves": ConfigSection(list[LeafNode], [], "[[leaves]]", is_target=False,
                                        lab_supplied=True)}

    def cross_check(self, raw: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
        from ...config import duplicates, names_in

        nodes = [(("nats", *loc), n) for loc, n in names_in(raw.get("nats"), "nodes")]
        yield from duplicates("NATS node", iter(nodes))
        yield from duplicates("leaf", ((("leaves", *loc), n)
                                       for loc, n in names_in(raw.get("leaves"))))
        known = {n for _, n in nodes}
        leaves = raw.get("leaves")
        for i, leaf in enumerate(leaves if isinstance(leaves, list) else []):
            hub = leaf.get("hub") if isinstance(leaf, dict) else None
            if isinstance(hub, str) and hub not in known:
                yield ("leaves", i, "hub"), f"hub {hub!r} is not a NATS node name"

    def state_slice(self) -> NatsSlice:
        from .state import NatsSlice

        return NatsSlice()

    def probes(self, ctx: ProbeContext) -> Sequence[Probe]:
        from .probe import LeafProbe, NatsNodeProbe

        inv = ctx.inventory
        probes: list[Probe] = []
        for cluster in inv.nats:
            probes += [NatsNodeProbe(ctx.http, n, len(cluster.nodes), cluster)
                       for n in cluster.nodes]
        probes += [LeafProbe(ctx.http, leaf) for leaf in inv.leaves]
        if ctx.canaries and inv.nats and inv.leaves:
            from .canary import RelayCanary

            central = inv.nats[0].endpoint(inv.nats[0].nodes[0])
            probes += [RelayCanary(None, leaf.name, leaf.user, central, leaf.endpoint())
                       for leaf in inv.leaves]
        return probes

    def fault_kinds(self) -> Sequence[FaultKind]:
        from .faults import LeafDisconnect

        return (LeafDisconnect(),)

    def packs(self) -> Mapping[str, Sequence[type[Scenario]]]:
        from .packs.lab_faults import LeafHubCut, NatsNodePause, NatsNodeRestart

        return {"lab-faults": [NatsNodeRestart, NatsNodePause, LeafHubCut]}

    def health(self, state: State) -> list[Health]:
        from .health import leaf_health, node_health

        return ([node_health(v.sample) for v in state.nats.nodes.values()]
                + [leaf_health(v.sample) for v in state.nats.leaves.values()])


SYSTEM = NatsSystem()
