"""Fault kinds: what each injects, which targets it accepts, and how it heals.

``inject`` returns a JSON-able ``heal`` spec; ``heal`` must work from that spec
alone, in a fresh process, after the injecting one crashed.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
import psutil

from ..errors import UserError
from ..netproxy import ProxyClient
from ..targets.vault import VaultApi

if TYPE_CHECKING:
    from ..config import Inventory
    from ..lab import Lab


class NothingApplied(UserError):
    """Injection failed before changing anything: there is nothing to heal."""


@dataclass
class FaultContext:
    """What fault kinds may touch: only targets named by this inventory (or its lab)."""

    inventory: Inventory
    http: aiohttp.ClientSession
    lab: Lab | None = None
    aws_credentials: dict[str, str] | None = None

    def require_lab(self, what: str) -> Lab:
        if self.lab is None:
            raise UserError(f"{what}: only available on the embedded lab", exit_code=2)
        return self.lab


class FaultKind:
    id: ClassVar[str]
    title: ClassVar[str]
    destructive: ClassVar[bool] = False  # the TUI asks before injecting
    one_shot: ClassVar[bool] = False  # an action, not a condition: nothing to heal
    defaults: ClassVar[dict[str, Any]] = {}

    def targets(self, ctx: FaultContext) -> list[str]:
        raise NotImplementedError

    async def prepare(self, ctx: FaultContext, target: str,
                      params: dict[str, Any]) -> dict[str, Any]:
        """Validate and return the heal spec; no side effects (it is written to the
        ledger before ``inject`` runs, so a crash mid-injection is still healable)."""
        return {}

    async def inject(self, ctx: FaultContext, target: str, params: dict[str, Any],
                     heal: dict[str, Any]) -> None:
        raise NotImplementedError

    async def heal(self, ctx: FaultContext, spec: dict[str, Any]) -> str:
        return "nothing to heal"


REGISTRY: dict[str, FaultKind] = {}


def register(cls: type[FaultKind]) -> type[FaultKind]:
    REGISTRY[cls.id] = cls()
    return cls


# ----------------------------------------------------------------------- processes
def _lab_nodes(ctx: FaultContext) -> list[str]:
    if ctx.lab is None:
        return []
    return sorted(n for n in ctx.lab.dir.load().procs if n != "netproxy")


def _attach(spec: dict[str, Any]) -> Lab:
    from ..lab import Lab

    return Lab.attach(spec["lab_dir"])


def _live_lab(spec: dict[str, Any]) -> Lab | None:
    """The lab a heal spec names, or None when it has been stopped (nothing to heal)."""
    lab = _attach(spec)
    return lab if lab.dir.load().phase == "up" else None


def _same_process(pid: int, started: float) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) < 0.5 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except psutil.Error:
        pass
    return None


@register
class ProcessKill(FaultKind):
    id = "process.kill"
    title = "kill -9 a lab node (healed by restarting it)"
    destructive = True

    def targets(self, ctx: FaultContext) -> list[str]:
        return _lab_nodes(ctx)

    async def prepare(self, ctx, target, params):
        lab = ctx.require_lab(self.id)
        rec = lab.process(target)
        if rec is None:
            raise UserError(f"{self.id}: {target} is not running", exit_code=1)
        return {"lab_dir": str(lab.dir.root), "node": target, "pid": rec.pid}

    async def inject(self, ctx, target, params, heal):
        os.kill(heal["pid"], signal.SIGKILL)

    async def heal(self, ctx, spec):
        lab = _live_lab(spec)
        if lab is None:
            return "lab is down; nothing to restart"
        if lab.process(spec["node"]) is not None:
            return f"{spec['node']} already running"
        rec = await lab.start_node(spec["node"])
        return f"restarted {spec['node']} (pid {rec.pid})"


@register
class ProcessRestart(ProcessKill):
    id = "process.restart"
    title = "restart a lab node (SIGTERM, then start it again)"
    one_shot = True

    async def inject(self, ctx, target, params, heal):
        await _attach(heal).restart_node(target)


@register
class ProcessPause(FaultKind):
    id = "process.pause"
    title = "SIGSTOP a lab node (healed with SIGCONT)"

    def targets(self, ctx):
        return _lab_nodes(ctx)

    async def prepare(self, ctx, target, params):
        lab = ctx.require_lab(self.id)
        rec = lab.process(target)
        if rec is None:
            raise UserError(f"{self.id}: {target} is not running", exit_code=1)
        return {"pid": rec.pid, "create_time": rec.create_time, "node": target}

    async def inject(self, ctx, target, params, heal):
        os.kill(heal["pid"], signal.SIGSTOP)

    async def heal(self, ctx, spec):
        proc = _same_process(spec["pid"], spec["create_time"])
        if proc is None:
            return f"{spec['node']} (pid {spec['pid']}) no longer exists"
        proc.send_signal(signal.SIGCONT)
        return f"resumed {spec['node']} (pid {spec['pid']})"


# --------------------------------------------------------------------------- links
def _proxy_links(ctx: FaultContext) -> list[str]:
    if ctx.lab is None or ctx.lab.topology() is None:
        return []
    return sorted(ctx.lab.topology().links)  # type: ignore[union-attr]


def resolve_links(links: list[str], target: str) -> list[str]:
    """A link name; ``a~b`` for both directions of a route or a leaf→hub link; or a
    node name for every link it has."""
    if target in links:
        return [target]
    if "~" in target:
        a, b = target.split("~", 1)
        return [n for n in links if n.split(".")[1:] in ([a, b], [b, a])]
    return [n for n in links if target in n.split(".")[1:]]


def _link_targets(ctx: FaultContext) -> list[str]:
    links = _proxy_links(ctx)
    nodes = sorted({part for n in links for part in n.split(".")[1:]})
    pairs = sorted({"~".join(sorted(n.split(".")[1:])) for n in links})
    return links + pairs + nodes


class LinkFaultKind(FaultKind):
    """Any fault applied on fault-proxy links."""

    fields: ClassVar[tuple[str, ...]] = ()

    def targets(self, ctx):
        return _link_targets(ctx)

    def fault_body(self, params: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    async def prepare(self, ctx, target, params):
        lab = ctx.require_lab(self.id)
        topo = lab.topology()
        assert topo is not None
        names = resolve_links(sorted(topo.links), target)
        if not names:
            raise UserError(f"{self.id}: no fault-proxy link matches {target}", exit_code=1)
        self.fault_body(params)  # validates params before anything is recorded
        return {"proxy_url": topo.proxy_url, "links": names}

    async def inject(self, ctx, target, params, heal):
        client = ProxyClient(ctx.http, heal["proxy_url"])
        for name in heal["links"]:
            await client.set_fault(name, **self.fault_body(params))

    async def heal(self, ctx, spec):
        client = ProxyClient(ctx.http, spec["proxy_url"])
        try:
            for name in spec["links"]:
                await client.clear(name)
        except UserError as exc:
            if "unreachable" in str(exc):
                return "fault proxy is gone (lab down): nothing to heal"
            raise
        return f"cleared {len(spec['links'])} link(s)"


@register
class LinkCut(LinkFaultKind):
    id = "link.cut"
    title = "cut a link both ways (NATS route or leaf link, via the fault proxy)"

    def fault_body(self, params):
        return {"cut": True}


@register
class LeafDisconnect(LinkFaultKind):
    id = "nats.leaf-disconnect"
    title = "disconnect a leaf from every hub (cut all its links)"

    def targets(self, ctx):
        return sorted({n.split(".")[1] for n in _proxy_links(ctx) if n.startswith("leaf.")})

    def fault_body(self, params):
        return {"cut": True}


@register
class LinkLatency(LinkFaultKind):
    id = "link.latency"
    title = "add latency ± jitter on a link"
    defaults = {"latency_ms": 200.0, "jitter_ms": 0.0}

    def fault_body(self, params):
        return {"latency_ms": float(params["latency_ms"]),
                "jitter_ms": float(params.get("jitter_ms", 0.0))}


@register
class LinkBandwidth(LinkFaultKind):
    id = "link.bandwidth"
    title = "cap a link's bandwidth (bytes/s each way)"
    defaults = {"bandwidth_bps": 10_000.0}

    def fault_body(self, params):
        return {"bandwidth_bps": float(params["bandwidth_bps"])}


@register
class LinkReset(LinkFaultKind):
    id = "link.reset"
    title = "reset every connection on a link while active"

    def fault_body(self, params):
        return {"reset": True}


# --------------------------------------------------------------------------- vault
def _vault_nodes(ctx: FaultContext) -> dict[str, str]:
    vault = ctx.inventory.vault
    return {n.name: n.api_addr for n in vault.nodes} if vault else {}


async def _vault_call(ctx: FaultContext, addr: str, method: str, path: str) -> int:
    vault = ctx.inventory.vault
    token = vault.token.resolve() if vault and vault.token else None
    status, _ = await VaultApi(ctx.http, addr, token, timeout=10).call(method, path)
    return status


@register
class VaultSeal(FaultKind):
    id = "vault.seal"
    title = "seal a Vault node (healed by restarting it: the lab seal auto-unseals)"
    destructive = True

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
        lab = _live_lab(spec)
        if lab is None:
            return "lab is down; nothing to unseal"
        new = await lab.restart_node(spec["node"])
        return f"restarted {spec['node']} (pid {new.pid}); static seal unseals it"


@register
class VaultStepDown(FaultKind):
    id = "vault.step-down"
    title = "make the Vault leader step down"
    one_shot = True

    def targets(self, ctx):
        return ["leader", *sorted(_vault_nodes(ctx))]

    async def inject(self, ctx, target, params, heal):
        nodes = _vault_nodes(ctx)
        addrs = list(nodes.values()) if target == "leader" else [nodes[target]]
        for addr in addrs:
            with contextlib.suppress(aiohttp.ClientError, TimeoutError):
                async with ctx.http.get(f"{addr}/v1/sys/health",
                                        timeout=aiohttp.ClientTimeout(total=2)) as r:
                    if (await r.json(content_type=None)).get("standby") is False:
                        status = await _vault_call(ctx, addr, "PUT", "sys/step-down")
                        if status not in (200, 204):
                            raise UserError(f"{self.id}: step-down failed: HTTP {status}")
                        return
        raise UserError(f"{self.id}: {target} is not the active node", exit_code=1)


@register
class VaultPartition(FaultKind):
    id = "vault.partition"
    title = "partition a Vault node from the other two (network namespace link down)"
    destructive = True

    def targets(self, ctx):
        return sorted(_vault_nodes(ctx)) if ctx.lab is not None else []

    async def prepare(self, ctx, target, params):
        lab = ctx.require_lab(self.id)
        topo = lab.topology()
        if topo is None or topo.netns is None:
            await lab.set_vault_link(target, up=True)  # raises the one-line refusal
        return {"lab_dir": str(lab.dir.root), "node": target}

    async def inject(self, ctx, target, params, heal):
        await _attach(heal).set_vault_link(target, up=False)

    async def heal(self, ctx, spec):
        lab = _live_lab(spec)
        if lab is None:
            return "lab is down; namespaces are gone"
        await lab.set_vault_link(spec["node"], up=True)
        return f"reconnected {spec['node']}"


# ----------------------------------------------------------------------------- ec2
class Ec2Kind(FaultKind):
    """EC2 faults act only on instances the inventory's tag filter selects."""

    def targets(self, ctx):
        return []  # discovered at inject time (a live EC2 query), see _check_target

    async def _client(self, ctx: FaultContext):
        import aioboto3

        aws = ctx.inventory.aws
        if aws is None:
            raise UserError(f"{self.id}: the inventory has no [aws] target", exit_code=2)
        session = aioboto3.Session(profile_name=aws.profile, region_name=aws.region,
                                   **(ctx.aws_credentials or {}))
        return session.client("ec2", endpoint_url=aws.endpoint_url)

    async def _check_target(self, ec2, ctx: FaultContext, target: str) -> None:
        aws = ctx.inventory.aws
        assert aws is not None
        found = await ec2.describe_instances(Filters=[
            {"Name": f"tag:{aws.instance_tag_key}", "Values": [aws.instance_tag_value]}])
        ids = {i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]}
        if target not in ids:
            raise UserError(f"{self.id}: {target} is not a vault instance in the inventory "
                            f"(tag {aws.instance_tag_key}={aws.instance_tag_value})",
                            exit_code=1)


@register
class Ec2Stop(Ec2Kind):
    id = "ec2.stop"
    title = "stop a vault instance's EC2 host (healed by starting it)"
    destructive = True

    async def prepare(self, ctx, target, params):
        async with await self._client(ctx) as ec2:
            await self._check_target(ec2, ctx, target)
        return {"instance": target}

    async def inject(self, ctx, target, params, heal):
        async with await self._client(ctx) as ec2:
            await ec2.stop_instances(InstanceIds=[target])

    async def heal(self, ctx, spec):
        async with await self._client(ctx) as ec2:
            await ec2.start_instances(InstanceIds=[spec["instance"]])
        return f"started {spec['instance']}"


@register
class Ec2Terminate(Ec2Kind):
    id = "ec2.terminate"
    title = "terminate a vault instance's EC2 host (irreversible; needs confirm=true)"
    destructive = True
    one_shot = True

    async def prepare(self, ctx, target, params):
        if params.get("confirm") is not True:
            raise UserError(f"{self.id} is irreversible: pass confirm=true", exit_code=1)
        async with await self._client(ctx) as ec2:
            await self._check_target(ec2, ctx, target)
        return {"instance": target}

    async def inject(self, ctx, target, params, heal):
        async with await self._client(ctx) as ec2:
            await ec2.terminate_instances(InstanceIds=[target])


# ----------------------------------------------------------------------------- ssh
_SAFE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")


def _safe(name: str, value: object) -> str:
    text = str(value)
    if not _SAFE.fullmatch(text):
        raise UserError(f"ssh fault: {name}={text!r} is not a plain name")
    return text


class SshCommandKind(FaultKind):
    """A remote command pair (inject / heal) run over SSH on hosts marked faults = true.

    The heal spec carries the host's full connection settings, so a later process
    can heal it even with a different inventory loaded.
    """

    def targets(self, ctx):
        return sorted(h.name for h in ctx.inventory.ssh.hosts if h.faults)

    def commands(self, params: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    async def prepare(self, ctx, target, params):
        from ..targets.ssh import find_host

        inject, heal = self.commands(params)
        if params.get("sudo"):
            inject, heal = f"sudo -n {inject}", f"sudo -n {heal}"
        host = find_host(ctx.inventory.ssh, target)
        return {"host": host.model_dump(mode="json"),
                "ssh": ctx.inventory.ssh.model_dump(mode="json"),
                "inject": inject, "heal": heal}

    async def inject(self, ctx, target, params, heal):
        try:
            await _ssh_command(heal, heal["inject"], "inject")
        except UserError as exc:  # one remote command: it failed, so nothing changed
            raise NothingApplied(str(exc), exit_code=exc.exit_code) from exc

    async def heal(self, ctx, spec):
        result = await _ssh_command(spec, spec["heal"], "heal")
        return f"ran `{spec['heal']}` on {spec['host']['name']} (exit {result})"


async def _ssh_command(spec: dict[str, Any], command: str, what: str) -> int:
    from ..config import SshConfig, SshHost
    from ..targets.ssh import run

    host = SshHost.model_validate(spec["host"])
    result = await run(host, SshConfig.model_validate(spec["ssh"]), command)
    if result.exit_status != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise UserError(f"ssh {host.name}: {what} command failed (exit "
                        f"{result.exit_status}): {detail}")
    return result.exit_status


@register
class SshNetem(SshCommandKind):
    id = "ssh.netem"
    title = "tc netem delay/loss on a real host's interface (over SSH)"
    defaults = {"dev": "eth0", "delay_ms": 100, "jitter_ms": 0, "loss_pct": 0, "sudo": False}

    def commands(self, params):
        dev = _safe("dev", params["dev"])
        delay, jitter = float(params["delay_ms"]), float(params["jitter_ms"])
        loss = float(params["loss_pct"])
        if min(delay, jitter, loss) < 0 or loss > 100:
            raise UserError("ssh.netem: delay_ms, jitter_ms >= 0 and 0 <= loss_pct <= 100")
        spec = f"delay {delay:g}ms" + (f" {jitter:g}ms" if jitter else "")
        spec += f" loss {loss:g}%" if loss else ""
        return (f"tc qdisc add dev {dev} root netem {spec}", f"tc qdisc del dev {dev} root")


@register
class SshBandwidth(SshCommandKind):
    id = "ssh.bandwidth"
    title = "cap a real host's interface bandwidth with tc tbf (over SSH)"
    defaults = {"dev": "eth0", "rate_kbit": 1000, "sudo": False}

    def commands(self, params):
        dev = _safe("dev", params["dev"])
        rate = int(params["rate_kbit"])
        if rate <= 0:
            raise UserError("ssh.bandwidth: rate_kbit must be positive")
        return (f"tc qdisc add dev {dev} root tbf rate {rate}kbit burst 32kbit latency 400ms",
                f"tc qdisc del dev {dev} root")


@register
class SshServiceStop(SshCommandKind):
    id = "ssh.service-stop"
    title = "systemctl stop a service on a real host (healed with start)"
    destructive = True
    defaults = {"service": "nats-server", "sudo": False}

    def commands(self, params):
        service = _safe("service", params["service"])
        return f"systemctl stop {service}", f"systemctl start {service}"


@register
class SshIptablesDrop(SshCommandKind):
    id = "ssh.iptables-drop"
    title = "iptables DROP a TCP port on a real host (healed by deleting the rule)"
    destructive = True
    defaults = {"port": 4222, "chain": "INPUT", "sudo": False}

    def commands(self, params):
        port = int(params["port"])
        if not 1 <= port <= 65535:
            raise UserError("ssh.iptables-drop: port must be 1..65535")
        chain = _safe("chain", params["chain"])
        rule = f"{chain} -p tcp --dport {port} -j DROP"
        return f"iptables -I {rule}", f"iptables -D {rule}"
