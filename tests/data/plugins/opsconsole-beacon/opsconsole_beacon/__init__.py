"""The beacon: an HTTP service answering ``GET /health`` with 200 (or 503 once silenced
through ``POST /admin/silence``; ``POST /admin/speak`` heals it). This plugin adds it to
opsconsole without editing opsconsole: the ``[beacon]`` inventory key, a probe, a state
slice, the ``beacon.silence`` fault kind and the ``beacon`` pack."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from opsconsole.plugin import (
    Check,
    ConfigSection,
    Event,
    FaultContext,
    FaultKind,
    HealSpec,
    Health,
    HttpUrl,
    Model,
    Outcome,
    Probe,
    ProbeContext,
    Run,
    Scenario,
    Slice,
    State,
    System,
    UserError,
    fresh,
)


class BeaconTarget(Model):
    url: HttpUrl


@dataclass(frozen=True, kw_only=True)
class BeaconSampled(Event):
    kind: ClassVar[str] = "beacon.sample"
    reachable: bool
    status: int = 0
    reason: str = ""


class BeaconProbe(Probe):
    interval = 0.2

    def __init__(self, http: aiohttp.ClientSession, target: BeaconTarget) -> None:
        self.name = "beacon"
        self.http, self.url = http, target.url.rstrip("/")

    async def sample(self) -> list[Event]:
        async with self.http.get(f"{self.url}/health",
                                 timeout=aiohttp.ClientTimeout(total=1)) as resp:
            return [BeaconSampled(reachable=True, status=resp.status)]

    def unreachable(self, why: str) -> list[Event]:
        return [BeaconSampled(reachable=False, reason=why)]


@dataclass
class BeaconSlice(Slice):
    last: BeaconSampled | None = None

    def on_sample(self, state: State, ev: BeaconSampled) -> None:
        if self.last is not None and (self.last.status == 200) != (ev.status == 200):
            state.note(ev.ts, f"beacon {'answers' if ev.status == 200 else 'is silent'}")
        self.last = ev


BeaconSlice.handlers = {BeaconSampled: BeaconSlice.on_sample}


class SilenceHeal(HealSpec):
    url: str  # the beacon to un-silence, recorded in the ledger at injection


class Silence(FaultKind):
    id = "beacon.silence"
    title = "silence the beacon (its /health answers 503 until healed)"
    Heal = SilenceHeal

    def targets(self, ctx: FaultContext) -> list[str]:
        return ["beacon"] if ctx.inventory.beacon is not None else []

    async def prepare(self, ctx, target, params):
        return {"url": ctx.inventory.beacon.url.rstrip("/")}

    async def inject(self, ctx, target, params, heal):
        await _post(ctx, f"{heal['url']}/admin/silence")

    async def heal(self, ctx, spec):
        await _post(ctx, f"{spec['url']}/admin/speak")
        return "the beacon speaks again"


async def _post(ctx: FaultContext, url: str) -> None:
    try:
        async with ctx.http.post(url, timeout=aiohttp.ClientTimeout(total=2)) as resp:
            if resp.status != 200:
                raise UserError(f"beacon: POST {url}: HTTP {resp.status}")
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UserError(f"beacon: POST {url}: {exc or type(exc).__name__}") from None


def _beacon(answering: bool) -> Check:
    async def fn(run: Run) -> Outcome:
        last = run.state.beacon.last
        if last is None or not fresh(last.ts):
            return "unknown", {"sample": None}
        ok = last.reachable and (last.status == 200) == answering
        return ("pass" if ok else "fail"), {"reachable": last.reachable, "status": last.status}

    return Check("the probe sees the beacon " + ("answering" if answering else "silent"), fn,
                 within=10)


class SilenceDetected(Scenario):
    id = "beacon.silence-detected"
    title = "silence the beacon: the probe sees it silent, then answering after the heal"
    needs_lab = False
    mutates = ("silence the beacon (fault beacon.silence)",)  # refused under read-only

    def steady_state(self) -> list[Check]:
        return [_beacon(answering=True)]

    def plan(self) -> list[str]:
        return ["inject beacon.silence", "the probe sees 503", "heal", "the probe sees 200"]

    async def method(self, run: Run) -> None:
        fault = await run.inject("beacon.silence", "beacon")
        await run.expect("the beacon went silent", _beacon(answering=False).fn, within=10)
        await run.heal(fault)
        await run.expect("the beacon answers after the heal", _beacon(answering=True).fn,
                         within=10)


class BeaconSystem(System):
    name = "beacon"
    title = "Beacon (example plugin)"

    def config_sections(self) -> Mapping[str, ConfigSection]:
        return {"beacon": ConfigSection(BeaconTarget | None, None, "[beacon]")}

    def state_slice(self) -> BeaconSlice:
        return BeaconSlice()

    def probes(self, ctx: ProbeContext) -> Sequence[Probe]:
        target = ctx.inventory.beacon
        return (BeaconProbe(ctx.http, target),) if target is not None else ()

    def fault_kinds(self) -> Sequence[FaultKind]:
        return (Silence(),)

    def packs(self) -> Mapping[str, Sequence[type[Scenario]]]:
        return {"beacon": [SilenceDetected]}

    def health(self, state: State) -> list[Health]:
        last: Any = state.beacon.last
        if last is None:
            return []
        return [Health("beacon", last.status == 200,
                       "healthy" if last.status == 200 else "silent")]


SYSTEM = BeaconSystem()
