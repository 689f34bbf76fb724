"""SSH fault kinds: tc netem/tbf, stop a service, iptables DROP, on hosts marked faults."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, NonNegativeFloat, PositiveInt

from ...errors import UserError
from ...faults.kinds import FaultKind, FaultParams, NothingApplied, StrictHealSpec
from .config import SshConfig, SshHost

# ----------------------------------------------------------------------------- ssh
_SAFE = re.compile(r"^[A-Za-z0-9_.@:-]{1,64}$")


def _safe(name: str, value: object) -> str:
    text = str(value)
    if not _SAFE.fullmatch(text):
        raise UserError(f"ssh fault: {name}={text!r} is not a plain name")
    return text


def _plain(value: object) -> str:
    text = str(value)
    if not _SAFE.fullmatch(text):
        raise ValueError(f"{text!r} is not a plain name")
    return text


PlainName = Annotated[str, AfterValidator(_plain)]


class SshParams(FaultParams):
    sudo: bool = False  # run both commands with `sudo -n`


class NetemParams(SshParams):
    dev: PlainName = "eth0"
    delay_ms: NonNegativeFloat = 100
    jitter_ms: NonNegativeFloat = 0
    loss_pct: float = Field(0, ge=0, le=100)


class TbfParams(SshParams):
    dev: PlainName = "eth0"
    rate_kbit: PositiveInt = 1000


class ServiceParams(SshParams):
    service: PlainName = "nats-server"


class DropParams(SshParams):
    port: int = Field(4222, ge=1, le=65535)
    chain: PlainName = "INPUT"


class CommandHeal(StrictHealSpec):
    """The host's connection settings and both commands: a later process heals with these
    even with another inventory loaded."""

    host: SshHost
    ssh: SshConfig
    inject: str
    heal: str


class SshCommandKind(FaultKind):
    """A remote command pair (inject / heal) run over SSH on hosts marked faults = true.

    The heal spec carries the host's full connection settings, so a later process
    can heal it even with a different inventory loaded.
    """

    Params = SshParams
    Heal = CommandHeal

    def targets(self, ctx):
        return sorted(h.name for h in ctx.inventory.ssh.hosts if h.faults)

    def commands(self, params: dict[str, Any]) -> tuple[str, str]:
        raise NotImplementedError

    async def prepare(self, ctx, target, params):
        from .client import find_host

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
    from .client import run
    from .config import SshConfig, SshHost

    host = SshHost.model_validate(spec["host"])
    result = await run(host, SshConfig.model_validate(spec["ssh"]), command)
    if result.exit_status != 0:
        detail = (result.stderr.strip().splitlines() or ["no output"])[-1][:200]
        raise UserError(f"ssh {host.name}: {what} command failed (exit "
                        f"{result.exit_status}): {detail}")
    return result.exit_status


class SshNetem(SshCommandKind):
    id = "ssh.netem"
    title = "tc netem delay/loss on a real host's interface (over SSH)"
    Params = NetemParams

    def commands(self, params):
        dev = _safe("dev", params["dev"])
        delay, jitter = float(params["delay_ms"]), float(params["jitter_ms"])
        loss = float(params["loss_pct"])
        if min(delay, jitter, loss) < 0 or loss > 100:
            raise UserError("ssh.netem: delay_ms, jitter_ms >= 0 and 0 <= loss_pct <= 100")
        spec = f"delay {delay:g}ms" + (f" {jitter:g}ms" if jitter else "")
        spec += f" loss {loss:g}%" if loss else ""
        return (f"tc qdisc add dev {dev} root netem {spec}", f"tc qdisc del dev {dev} root")


class SshBandwidth(SshCommandKind):
    id = "ssh.bandwidth"
    title = "cap a real host's interface bandwidth with tc tbf (over SSH)"
    Params = TbfParams

    def commands(self, params):
        dev = _safe("dev", params["dev"])
        rate = int(params["rate_kbit"])
        if rate <= 0:
            raise UserError("ssh.bandwidth: rate_kbit must be positive")
        return (f"tc qdisc add dev {dev} root tbf rate {rate}kbit burst 32kbit latency 400ms",
                f"tc qdisc del dev {dev} root")


class SshServiceStop(SshCommandKind):
    id = "ssh.service-stop"
    title = "systemctl stop a service on a real host (healed with start)"
    destructive = True
    Params = ServiceParams

    def commands(self, params):
        service = _safe("service", params["service"])
        return f"systemctl stop {service}", f"systemctl start {service}"


class SshIptablesDrop(SshCommandKind):
    id = "ssh.iptables-drop"
    title = "iptables DROP a TCP port on a real host (healed by deleting the rule)"
    destructive = True
    Params = DropParams

    def commands(self, params):
        port = int(params["port"])
        if not 1 <= port <= 65535:
            raise UserError("ssh.iptables-drop: port must be 1..65535")
        chain = _safe("chain", params["chain"])
        rule = f"{chain} -p tcp --dport {port} -j DROP"
        return f"iptables -I {rule}", f"iptables -D {rule}"


KINDS: tuple[FaultKind, ...] = (SshNetem(), SshBandwidth(), SshServiceStop(), SshIptablesDrop())
