"""NATS scenarios of the ``lab-faults`` pack: kill and pause a node, cut a leaf's hub link."""

from __future__ import annotations

import asyncio
import time
import uuid

from ....scenarios.engine import Outcome, Run, Scenario
from ....settings import settings
from ....targets.nats import NatsEndpoint
from ..checks import leaves_connected, message_crosses_relay, nats_cluster_healthy, nats_roundtrip


def _central_urls(run: Run) -> dict[str, NatsEndpoint]:
    return {n.name: c.endpoint(n) for c in run.inventory.nats for n in c.nodes}


class NatsNodeRestart(Scenario):
    id = "lab-faults.nats-node-restart"
    title = "kill a central NATS node: the cluster keeps routing, the node rejoins"
    victim = "nats-3"
    mutates = (f"kill -9 {victim} and restart it (fault)",)

    def steady_state(self):
        return [nats_cluster_healthy(), leaves_connected(), message_crosses_relay()]

    def plan(self):
        return [f"kill -9 {self.victim}", "survivors still route messages",
                f"restart {self.victim}", "it rejoins with full routes"]

    async def method(self, run: Run) -> None:
        urls = _central_urls(run)
        survivors = [n for n in urls if n != self.victim]
        fault = await run.inject("process.kill", self.victim)
        run.metric("detect_seconds", await run.wait_until(
            f"{self.victim} unreachable in the console state",
            lambda: not run.state.nats.nodes[self.victim].sample.reachable, 15))

        async def survivors_route(_: Run) -> Outcome:
            ok, secs = await nats_roundtrip(urls[survivors[0]], urls[survivors[1]],
                                            f"lab.restart.{uuid.uuid4().hex[:6]}")
            return ("pass" if ok else "fail"), {"from": survivors[0], "to": survivors[1],
                                                "seconds": round(secs, 3)}

        await run.expect("survivors route messages while a node is down", survivors_route, 10)
        await run.heal(fault)
        began = time.monotonic()

        def rejoined() -> bool:
            return all(v.sample.reachable and v.sample.healthy
                       and v.sample.ts > time.time() - 2 for v in run.state.nats.nodes.values())

        await run.wait_until(f"{self.victim} to rejoin with full routes", rejoined, 30)
        run.metric("rejoin_seconds", time.monotonic() - began)



class NatsNodePause(Scenario):
    id = "lab-faults.nats-node-pause"
    title = "SIGSTOP a central NATS node for a while: survivors keep routing, it resumes"
    victim = "nats-3"
    mutates = (f"SIGSTOP {victim}, then SIGCONT (fault)",)

    @property
    def pause_s(self) -> float:
        """OPSCONSOLE_LAB_PAUSE_S, read when the scenario plans or runs (not at import)."""
        return settings().lab_pause_s

    def steady_state(self):
        return [nats_cluster_healthy(), message_crosses_relay()]

    def plan(self):
        return [f"SIGSTOP {self.victim} for {self.pause_s:g} s", "survivors still route",
                f"SIGCONT {self.victim}", "it is healthy again"]

    async def method(self, run: Run) -> None:
        urls = _central_urls(run)
        survivors = [n for n in urls if n != self.victim]
        fault = await run.inject("process.pause", self.victim, ttl_s=self.pause_s + 60)

        async def survivors_route(_: Run) -> Outcome:
            ok, secs = await nats_roundtrip(urls[survivors[0]], urls[survivors[1]],
                                            f"lab.pause.{uuid.uuid4().hex[:6]}")
            return ("pass" if ok else "fail"), {"seconds": round(secs, 3)}

        await run.expect("survivors route messages while a node is paused", survivors_route,
                         10)
        run.step(f"hold the pause for {self.pause_s:g} s")
        await asyncio.sleep(self.pause_s)  # the method's own definition: a timed pause
        await run.heal(fault)


class LeafHubCut(Scenario):
    id = "lab-faults.leaf-hub-cut"
    title = "cut a leaf's link to its hub: it fails over to another hub, relay resumes"
    leaf = "leaf-u1"
    mutates = (f"cut {leaf}'s link to its hub (fault)",)

    def steady_state(self):
        return [leaves_connected(), message_crosses_relay()]

    def plan(self):
        return [f"cut {self.leaf} ⇄ its current hub (both ways)",
                "it attaches to another hub", "messages cross again", "heal the cut"]

    async def method(self, run: Run) -> None:
        hub = run.state.nats.leaves[self.leaf].sample.hub
        started = time.monotonic()
        fault = await run.inject("link.cut", f"{self.leaf}~{hub}")
        await run.wait_until(f"{self.leaf} to attach to a hub other than {hub}",
                             lambda: run.state.nats.leaves[self.leaf].sample.hub not in ("", hub),
                             30)
        run.metric("leaf_failover_seconds", time.monotonic() - started)
        await run.expect("relay works through the new hub",
                         message_crosses_relay().fn, within=15)
        await run.heal(fault)

