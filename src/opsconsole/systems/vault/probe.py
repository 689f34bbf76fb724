"""Probe for a Vault/OpenBao cluster: every node's health, raft roles from the active node."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from ...config_fields import SecretRef
from ...core.events import Event
from ...probes.base import Probe
from ...targets.http import NETWORK_ERRORS, reason
from .client import VaultApi
from .config import VaultCluster
from .events import VaultNodeSampled


class VaultClusterProbe(Probe):
    """One probe for the whole cluster so every node's row comes from the same instant.

    Raft configuration and autopilot state are read from the active node only: a
    standby would forward (and stall) during an election.
    """

    interval = 0.5
    timeout = 3.0

    def __init__(self, session: aiohttp.ClientSession, cluster: VaultCluster,
                 token: SecretRef | None) -> None:
        self.name = f"vault:{cluster.name}"
        self.cluster = cluster
        self.token_ref = token
        self.session = session

    def _api(self, addr: str, token: str | None) -> VaultApi:
        api = VaultApi.for_cluster(self.session, self.cluster, addr, timeout=1.0, token=False)
        api.token = token
        return api

    async def sample(self) -> list[Event]:
        token = self.token_ref.resolve() if self.token_ref else None
        nodes = self.cluster.nodes
        results = await asyncio.gather(*(self._api(n.api_addr, None).health() for n in nodes),
                                       return_exceptions=True)
        active = next((n for n, h in zip(nodes, results, strict=True)
                       if isinstance(h, dict) and h.get("standby") is False
                       and not h.get("sealed")), None)
        raft: dict[str, dict[str, Any]] = {}
        autopilot: dict[str, dict[str, Any]] = {}
        if active is not None and token:
            api = self._api(active.api_addr, token)
            try:
                servers, ap = await asyncio.gather(api.raft_servers(), api.autopilot_state())
                raft = {s.get("node_id", ""): s for s in servers}
                autopilot = ap.get("servers", {}) or {}
            except NETWORK_ERRORS:
                pass
        leader_index = max((s.get("last_index", 0) for s in autopilot.values()), default=0)
        events: list[Event] = []
        for node, result in zip(nodes, results, strict=True):
            r = raft.get(node.name, {})
            if isinstance(result, BaseException):
                # Still a raft member (per the active node) even while unreachable.
                events.append(VaultNodeSampled(name=node.name, reachable=False,
                                               voter=bool(r.get("voter")),
                                               reason=f"unreachable: {reason(result)}"))
                continue
            ap = autopilot.get(node.name, {})
            last_index = ap.get("last_index")
            events.append(VaultNodeSampled(
                name=node.name, reachable=True, initialized=bool(result.get("initialized")),
                sealed=bool(result.get("sealed")), standby=result.get("standby"),
                version=result.get("version", ""),
                # The active node is the leader: sys/health says so as soon as it is
                # elected, before the raft configuration can be read from it.
                leader=node is active,
                voter=bool(r.get("voter")),
                autopilot_healthy=ap.get("healthy"), last_index=last_index,
                lag=(leader_index - last_index) if last_index is not None else None))
        return events

    def unreachable(self, why: str) -> list[Event]:
        return [VaultNodeSampled(name=n.name, reachable=False, reason=f"unreachable: {why}")
                for n in self.cluster.nodes]
