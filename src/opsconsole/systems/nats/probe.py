"""Probes for central NATS nodes and leaf (vault-instance) servers.

Each probe holds a client connection made with the target's own credentials and TLS (the
connection factory), so a wrong password, an untrusted CA or an expired ``.creds`` shows
as ``unreachable: <cause>`` even when the unauthenticated monitoring port answers; the
monitoring endpoints (when the inventory names them) add routes, leaf links and counters.
"""

from __future__ import annotations

import contextlib
from typing import Any

import aiohttp

from ...core.events import Event
from ...probes.base import Probe
from ...targets.nats import NatsEndpoint
from .config import LeafNode, NatsCluster, NatsNode
from .events import LeafSampled, NatsNodeSampled
from .health import central_healthy, leaf_healthy
from .monitor import NatsMonitor

#: nats.connect options of a probe's connection: one try per sample, no reconnect loop
#: behind the probe's back (the probe reconnects on its next sample, with backoff); the
#: client's own pings notice a server that stops answering within ~3 s and close it.
PROBE_CONNECT = {"connect_timeout": 2, "allow_reconnect": False, "max_reconnect_attempts": 0,
                 "ping_interval": 1, "max_outstanding_pings": 3}


class _ClientCheck:
    """A kept client connection to one server: connected now, or the cause."""

    def __init__(self, endpoint: NatsEndpoint | None) -> None:
        self.endpoint = endpoint
        self.nc: Any = None

    async def check(self) -> None:
        """Raise ``NatsConnectError`` unless a logged-in connection is up. No flush here:
        nats-py's read loop dies on a PONG that arrives after a flush timed out or was
        cancelled (InvalidStateError in ``_process_pong``), so liveness is its own pings."""
        if self.endpoint is None:
            return
        if self.nc is None or not self.nc.is_connected:
            await self.close()
            self.nc = await self.endpoint.connect(**PROBE_CONNECT)

    async def close(self) -> None:
        if self.nc is not None:
            with contextlib.suppress(Exception):
                await self.nc.close()
            self.nc = None


class NatsNodeProbe(Probe):
    interval = 1.0

    def __init__(self, session: aiohttp.ClientSession, node: NatsNode, cluster_size: int,
                 cluster: NatsCluster | None = None) -> None:
        self.node = node
        self.name = f"nats:{node.name}"
        self.cluster_size = cluster_size
        self.client = _ClientCheck(cluster.endpoint(node) if cluster is not None else None)
        self.monitor = (NatsMonitor(session, node.monitor_url, tls=cluster)
                        if node.monitor_url else None)

    async def sample(self) -> list[Event]:
        await self.client.check()
        if self.monitor is None:  # a client connection is all we can see
            return [NatsNodeSampled(name=self.node.name, reachable=True, healthy=True,
                                    reason="no monitor_url: routes not observed")]
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

    async def close(self) -> None:
        await self.client.close()

    def unreachable(self, why: str) -> list[Event]:
        return [NatsNodeSampled(name=self.node.name, reachable=False, reason=why)]


class LeafProbe(Probe):
    interval = 1.0

    def __init__(self, session: aiohttp.ClientSession, leaf: LeafNode,
                 client: bool = True) -> None:
        self.leaf = leaf
        self.name = f"leaf:{leaf.name}"
        self.client = _ClientCheck(leaf.endpoint() if client else None)
        self.monitor = NatsMonitor(session, leaf.monitor_url, tls=leaf)

    async def sample(self) -> list[Event]:
        await self.client.check()
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

    async def close(self) -> None:
        await self.client.close()

    def unreachable(self, why: str) -> list[Event]:
        return [LeafSampled(name=self.leaf.name, user=self.leaf.user, reachable=False,
                            reason=why)]
