"""Lab-only fault kinds: kill, restart or pause a lab process; cut, slow or reset a
fault-proxy link; cut the previews router off its containers (the HTTP fault proxy's
forward link, ``previews.router-cut``). Their heal specs name the lab's state directory
(or the proxy's control URL), so a fresh process heals them after a crash."""

from __future__ import annotations

import os
import signal
from typing import Any, Literal

import aiohttp
import psutil
from pydantic import Field, NonNegativeFloat, PositiveFloat

from ..errors import UserError
from ..netproxy import ProxyClient
from .kinds import FaultContext, FaultKind, FaultParams, LabNodeHeal, StrictHealSpec
from .lab_control import LabControl, live
from .lab_control import attach as attach_lab


# ----------------------------------------------------------------------- processes
def _lab_nodes(ctx: FaultContext) -> list[str]:
    if ctx.lab is None:
        return []
    return sorted(n for n in ctx.lab.dir.load().procs if n != "netproxy")


def attach(spec: dict[str, Any]) -> LabControl:
    return attach_lab(spec["lab_dir"])


def live_lab(spec: dict[str, Any]) -> LabControl | None:
    """The lab a heal spec names, or None when it has been stopped (nothing to heal)."""
    return live(spec)


def _same_process(pid: int, started: float) -> psutil.Process | None:
    try:
        proc = psutil.Process(pid)
        if abs(proc.create_time() - started) < 0.5 and proc.status() != psutil.STATUS_ZOMBIE:
            return proc
    except psutil.Error:
        pass
    return None


class ProcessHeal(LabNodeHeal):
    pid: int


class PausedHeal(StrictHealSpec):
    pid: int
    create_time: float
    node: str


class LinkHeal(StrictHealSpec):
    proxy_url: str
    links: list[str] = Field(min_length=1)


class ProcessKill(FaultKind):
    id = "process.kill"
    title = "kill -9 a lab node (healed by restarting it)"
    destructive = True
    Heal = ProcessHeal

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
        lab = live_lab(spec)
        if lab is None:
            return "lab is down; nothing to restart"
        if lab.process(spec["node"]) is not None:
            return f"{spec['node']} already running"
        rec = await lab.start_node(spec["node"])
        return f"restarted {spec['node']} (pid {rec.pid})"


class ProcessRestart(ProcessKill):
    id = "process.restart"
    title = "restart a lab node (SIGTERM, then start it again)"
    one_shot = True

    async def inject(self, ctx, target, params, heal):
        await attach(heal).restart_node(target)


class ProcessPause(FaultKind):
    id = "process.pause"
    title = "SIGSTOP a lab node (healed with SIGCONT)"
    Heal = PausedHeal

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
def proxy_links(ctx: FaultContext) -> list[str]:
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
    links = proxy_links(ctx)
    nodes = sorted({part for n in links for part in n.split(".")[1:]})
    pairs = sorted({"~".join(sorted(n.split(".")[1:])) for n in links})
    return links + pairs + nodes


class LinkFaultKind(FaultKind):
    """Any fault applied on fault-proxy links."""

    Heal = LinkHeal

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


class LinkCut(LinkFaultKind):
    id = "link.cut"
    title = "cut a link both ways (NATS route or leaf link, via the fault proxy)"

    def fault_body(self, params):
        return {"cut": True}


class LatencyParams(FaultParams):
    latency_ms: NonNegativeFloat = 200.0
    jitter_ms: NonNegativeFloat = 0.0


class LinkLatency(LinkFaultKind):
    id = "link.latency"
    title = "add latency ± jitter on a link"
    Params = LatencyParams

    def fault_body(self, params):
        return {"latency_ms": float(params["latency_ms"]),
                "jitter_ms": float(params.get("jitter_ms", 0.0))}


class BandwidthParams(FaultParams):
    bandwidth_bps: PositiveFloat = 10_000.0


class LinkBandwidth(LinkFaultKind):
    id = "link.bandwidth"
    title = "cap a link's bandwidth (bytes/s each way)"
    Params = BandwidthParams

    def fault_body(self, params):
        return {"bandwidth_bps": float(params["bandwidth_bps"])}


class LinkReset(LinkFaultKind):
    id = "link.reset"
    title = "reset every connection on a link while active"

    def fault_body(self, params):
        return {"reset": True}


# ------------------------------------------------------------- previews router
ROUTER_CUT = "previews.router-cut"
ROUTER_NODE = "sessions"  # the lab node whose router reaches containers via the proxy


class RouterCutParams(FaultParams):
    #: drop: packets vanish (requests hang until the router gives up: 502 after its
    #: timeout; sockets go silent); reset: every connection is reset at once (502 at once)
    mode: Literal["drop", "reset"] = "drop"


class RouterCutHeal(StrictHealSpec):
    proxy_url: str


async def _forward_cut(http: aiohttp.ClientSession, proxy_url: str, body: dict[str, Any] | None
                       ) -> dict[str, Any]:
    """Cut (``body``) or heal (None) the router→containers link of the HTTP fault proxy."""
    return await ProxyClient(http, proxy_url, label=ROUTER_CUT).call(
        "PUT" if body is not None else "DELETE", "/forward/cut", body)


class PreviewsRouterCut(FaultKind):
    id = ROUTER_CUT
    title = "cut the previews router off its containers (via the HTTP fault proxy)"
    Params = RouterCutParams
    Heal = RouterCutHeal

    def targets(self, ctx):
        return [ROUTER_NODE]

    async def prepare(self, ctx, target, params):
        lab = ctx.require_lab(self.id)
        topo = lab.topology()
        url = getattr(topo, "http_proxy_url", None) if topo is not None else None
        if not url:
            raise UserError(f"{self.id}: this lab has no HTTP fault proxy (started by an "
                            "older opsconsole: run `opsconsole lab down`, then `lab up`)")
        return {"proxy_url": url}

    async def inject(self, ctx, target, params, heal):
        await _forward_cut(ctx.http, heal["proxy_url"], {"mode": params["mode"]})

    async def heal(self, ctx, spec):
        try:
            await _forward_cut(ctx.http, spec["proxy_url"], None)
        except UserError as exc:
            if "unreachable" in str(exc):
                return "the HTTP fault proxy is gone (lab down): nothing to heal"
            raise
        return "router ↔ containers link restored"


KINDS: tuple[FaultKind, ...] = (ProcessKill(), ProcessRestart(), ProcessPause(), LinkCut(),
                                LinkLatency(), LinkBandwidth(), LinkReset(),
                                PreviewsRouterCut())
