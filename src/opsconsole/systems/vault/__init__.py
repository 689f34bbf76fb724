"""Vault/OpenBao: the Raft cluster's health and roles, metrics and alert rules, faults
(seal, step-down, partition), the ``vault-ha`` pack and the Vault half of ``lab-faults``."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ...core.system import ConfigSection, Health, Loc, ProbeContext, System
from . import events  # noqa: F401 - registers the Vault event kinds
from .config import VaultCluster

if TYPE_CHECKING:
    from ...core.state import State
    from ...faults.kinds import FaultKind
    from ...probes.base import Probe
    from ...scenarios.engine import Scenario
    from .state import VaultSlice


class VaultSystem(System):
    name = "vault"
    title = "Vault / OpenBao cluster"
    order = 20

    def config_sections(self) -> Mapping[str, ConfigSection]:
        return {"vault": ConfigSection(VaultCluster | None, None, "[vault]",
                                       is_target=True, lab_supplied=True)}

    def cross_check(self, raw: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
        from ...config import duplicates, names_in

        vault = raw.get("vault") if isinstance(raw.get("vault"), dict) else {}
        yield from duplicates("vault node", ((("vault", "nodes", *loc), n)
                                             for loc, n in names_in(vault.get("nodes"))))

    def state_slice(self) -> VaultSlice:
        from .state import VaultSlice

        return VaultSlice()

    def probes(self, ctx: ProbeContext) -> Sequence[Probe]:
        from .metrics_probe import VaultMetricsProbe
        from .probe import VaultClusterProbe

        vault = ctx.inventory.vault
        if vault is None:
            return ()
        return (VaultClusterProbe(ctx.http, vault, vault.token),
                VaultMetricsProbe(ctx.http, vault))

    def fault_kinds(self) -> Sequence[FaultKind]:
        from .faults import KINDS

        return KINDS

    def packs(self) -> Mapping[str, Sequence[type[Scenario]]]:
        from .packs.lab_faults import VaultLeaderKill, VaultPartition
        from .packs.vault_ha import SCENARIOS

        return {"vault-ha": SCENARIOS, "lab-faults": [VaultLeaderKill, VaultPartition]}

    def health(self, state: State) -> list[Health]:
        from .health import node_health

        return [node_health(s) for s in state.vault.nodes.values()]


SYSTEM = VaultSystem()
