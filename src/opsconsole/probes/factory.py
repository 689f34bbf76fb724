"""Build the probe set for an inventory."""

from __future__ import annotations

import aiohttp

from ..config import Inventory
from .base import Probe
from .instances import InstanceProbe
from .nats import LeafProbe, NatsNodeProbe
from .sessions import SessionsProbe
from .vault import VaultClusterProbe
from .vault_metrics import VaultMetricsProbe


def build_probes(inv: Inventory, session: aiohttp.ClientSession,
                 aws_credentials: dict[str, str] | None = None) -> list[Probe]:
    probes: list[Probe] = []
    for cluster in inv.nats:
        probes += [NatsNodeProbe(session, n, len(cluster.nodes)) for n in cluster.nodes]
    probes += [LeafProbe(session, leaf) for leaf in inv.leaves]
    if inv.vault is not None:
        probes.append(VaultClusterProbe(session, inv.vault, inv.vault.token))
        probes.append(VaultMetricsProbe(session, inv.vault))
    if inv.sessions is not None:
        probes.append(SessionsProbe(session, inv.sessions))
    if inv.aws is not None:
        probes.append(InstanceProbe(inv.aws, aws_credentials, inv.provisioner, session))
    return probes
