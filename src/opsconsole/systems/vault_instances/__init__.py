"""Vault instances: members' EC2-hosted vaults behind the provisioning API, each with a
local NATS relay and a Vault Manager (the instances probe and the ``vault-instance`` pack)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...core.system import ConfigSection, Health, ProbeContext, System
from . import events  # noqa: F401 - registers the instance event kind
from .config import ProvisionerTarget

if TYPE_CHECKING:
    from ...core.state import State
    from ...probes.base import Probe
    from ...scenarios.engine import Scenario
    from .state import InstancesSlice


class VaultInstancesSystem(System):
    name = "vault_instances"
    title = "Vault instances (EC2, local NATS relay, Vault Manager)"
    order = 40

    def config_sections(self) -> Mapping[str, ConfigSection]:
        return {"provisioner": ConfigSection(ProvisionerTarget | None, None, "[provisioner]",
                                             is_target=False)}

    def state_slice(self) -> InstancesSlice:
        from .state import InstancesSlice

        return InstancesSlice()

    def probes(self, ctx: ProbeContext) -> Sequence[Probe]:
        from .probe import InstanceProbe

        inv = ctx.inventory
        if inv.aws is None:
            return ()
        return (InstanceProbe(inv.aws, ctx.aws_credentials, inv.provisioner, ctx.http),)

    def packs(self) -> Mapping[str, Sequence[type[Scenario]]]:
        from .packs.vault_instance import SCENARIOS

        return {"vault-instance": SCENARIOS}

    def health(self, state: State) -> list[Health]:
        from .health import instance_health

        nats = state.slices.get("nats")
        leaves = {v.sample.user: v.sample for v in nats.leaves.values()} if nats else {}
        return [instance_health(i, leaves.get(i.owner))
                for i in state.vault_instances.instances.values() if i.state != "terminated"]


SYSTEM = VaultInstancesSystem()
