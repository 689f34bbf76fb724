"""Probes for central NATS nodes and leaf (vault-instance) servers."""

from __future__ import annotations

import aiohttp

from ...core.events import Event
from ...probes.base import Probe
from .config import LeafNode, NatsCluster, NatsNode
from .events import LeafSampled, NatsNodeSampled
from .health import central_healthy, leaf_healthy
from .monitor import NatsMonitor


class NatsNodeProbe(Probe):
    interval = 1.0

    def __init__(self, session: aiohttp.ClientSession, node: NatsNode, cluster_size: int,
                 cluster: NatsCluster | None = None) -> None:
        self.node = node
        self.name = f"nats:{node.name}"
        self.cluster_size = cluster_size
        self.monitor = NatsMonitor(session, node.monitor_url, tls=cluster)

    async def sample(self) -> list[Event]:
        healthy, varz, peers, leafs, jsz = await self.monitor.snapshot()
        meta = (jsz.get("meta_cluster") or {}).get("leader", "")
        return [NatsNodeSampled(
            name=self.node.name, reachable=True,
            healthy=central_healthy(healthy, len(peers), self.cluster_size),
            connections=varz.get("connections", 0), routes=len(peers), leafnodes=len(leafs),
            in_msgs=varz.get("in_msgs", 0), out_msgs=varz.get("out_msgs", 0),
            in_bytes=varz.get("in_bytes", 0), out_bytes=varz.get("out_bytes", 0),
            slow_consumers=varz.get("slow_consumers", 0), mem_bytes=varz.get("mem", 0),
            cpu_percent=float(varz.get("cpu", 0.0)), uptime=varz.get("uptime", ""),
            js_meta_leader=meta)]

    def unreachable(self, why: str) -> list[Event]:
        return [NatsNodeSampled(name=self.node.name, reachable=False, reason=why)]


class LeafProbe(Probe):
    interval = 1.0

    def __init__(self, session: aiohttp.ClientSession, leaf: LeafNode) -> None:
        self.leaf = leaf
        self.name = f"leaf:{leaf.name}"
        self.monitor = NatsMonitor(session, leaf.monitor_url, tls=leaf)

    async def sample(self) -> list[Event]:
        healthy = await self.monitor.healthz()
        varz = await self.monitor.endpoint("varz")
        links = await self.monitor.leaf_links()
        # On the leaf side of the link, "in" came from the hub and "out" went to it.
        link = links[0] if links else {}
        return [LeafSampled(
            name=self.leaf.name, user=self.leaf.user, reachable=True,
            healthy=leaf_healthy(healthy, len(links)), hub=link.get("name", ""),
            connections=varz.get("connections", 0),
            to_local_msgs=link.get("in_msgs", 0), to_central_msgs=link.get("out_msgs", 0))]

    def unreachable(self, why: str) -> list[Event]:
        return [LeafSampled(name=self.leaf.name, user=self.leaf.user, reachable=False,
                            reason=why)]
