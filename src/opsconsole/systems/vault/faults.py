"""Vault fault kinds: seal a node, make the leader step down, partition a node."""

from __future__ import annotations

from ...errors import UserError
from ...faults.kinds import FaultContext, FaultKind, LabNodeHeal, StrictHealSpec
from ...faults.lab_kinds import attach, live_lab
from .client import VaultApi


# --------------------------------------------------------------------------- vault
def _vault_nodes(ctx: FaultContext) -> dict[str, str]:
    vault = ctx.inventory.vault
    return {n.name: n.api_addr for n in vault.nodes} if vault else {}


async def _vault_call(ctx: FaultContext, addr: str, method: str, path: str) -> int:
    api = VaultApi.for_cluster(ctx.http, ctx.inventory.vault, addr, timeout=10)
    status, _ = await api.call(method, path)
    return status


class VaultSeal(FaultKind):
    id = "vault.seal"
    title = "seal a Vault node (healed by restarting it: the lab seal auto-unseals)"
    destructive = True
    Heal = LabNodeHeal

    def targets(self, ctx):
        return sorted(_vault_nodes(ctx))

    async def prepare(self, ctx, target, params):
        lab = ctx.require_lab(self.id)  # healing needs a restart the lab can do
        return {"lab_dir": str(lab.dir.root), "node": target}

    async def inject(self, ctx, target, params, heal):
        status = await _vault_call(ctx, _vault_nodes(ctx)[target], "PUT", "sys/seal")
        if status not in (200, 204):
            raise UserError(f"{self.id}: sealing {target} failed: HTTP {status}")

    async def heal(self, ctx, spec):
        lab = live_lab(spec)
        if lab is None:
            return "lab is down; nothing to unseal"
        new = await lab.restart_node(spec["node"])
        return f"restarted {spec['node']} (pid {new.pid}); static seal unseals it"


class VaultStepDown(FaultKind):
    id = "vault.step-down"
    title = "make the Vault leader step down"
    one_shot = True
    Heal = StrictHealSpec  # nothing to heal

    def targets(self, ctx):
        return ["leader", *sorted(_vault_nodes(ctx))]

    async def inject(self, ctx, target, params, heal):
        nodes = _vault_nodes(ctx)
        addrs = list(nodes.values()) if target == "leader" else [nodes[target]]
        for addr in addrs:
            api = VaultApi.for_cluster(ctx.http, ctx.inventory.vault, addr)
            health = await api.try_health()
            if health is not None and health.get("standby") is False:
                status = await _vault_call(ctx, addr, "PUT", "sys/step-down")
                if status not in (200, 204):
                    raise UserError(f"{self.id}: step-down failed: HTTP {status}")
                return
        raise UserError(f"{self.id}: {target} is not the active node", exit_code=1)


class VaultPartition(FaultKind):
    id = "vault.partition"
    title = "partition a Vault node from the other two (network namespace link down)"
    destructive = True
    Heal = LabNodeHeal

    def targets(self, ctx):
        return sorted(_vault_nodes(ctx)) if ctx.lab is not None else []

    async def prepare(self, ctx, target, params):
        lab = ctx.require_lab(self.id)
        topo = lab.topology()
        if topo is None or topo.netns is None:
            await lab.set_vault_link(target, up=True)  # raises the one-line refusal
        return {"lab_dir": str(lab.dir.root), "node": target}

    async def inject(self, ctx, target, params, heal):
        await attach(heal).set_vault_link(target, up=False)

    async def heal(self, ctx, spec):
        lab = live_lab(spec)
        if lab is None:
            return "lab is down; namespaces are gone"
        await lab.set_vault_link(spec["node"], up=True)
        return f"reconnected {spec['node']}"


KINDS: tuple[FaultKind, ...] = (VaultSeal(), VaultStepDown(), VaultPartition())
