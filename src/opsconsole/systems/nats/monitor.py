"""NATS server monitoring endpoints (/varz /routez /leafz /healthz /jsz)."""

from __future__ import annotations

import asyncio

import aiohttp

from ...targets.http import Json, get_json


class NatsMonitor:
    def __init__(self, session: aiohttp.ClientSession, monitor_url: str,
                 timeout: float = 2.0) -> None:
        self.session = session
        self.url = monitor_url.rstrip("/")
        self.timeout = timeout

    async def endpoint(self, name: str) -> Json:
        _, data = await get_json(self.session, f"{self.url}/{name}", timeout=self.timeout)
        return data

    async def healthz(self) -> bool:
        status, _ = await get_json(self.session, f"{self.url}/healthz", timeout=self.timeout)
        return status == 200

    async def route_peers(self) -> set[str]:
        """Distinct peer server names (route pooling opens several routes per peer)."""
        routez = await self.endpoint("routez")
        return {r.get("remote_name") for r in routez.get("routes", []) if r.get("remote_name")}

    async def leaf_links(self) -> list[Json]:
        return (await self.endpoint("leafz")).get("leafs", [])

    async def snapshot(self) -> tuple[bool, Json, set[str], list[Json], Json]:
        """healthz, varz, route peers, leaf links and jsz in one concurrent round."""
        healthy, varz, peers, leafs, jsz = await asyncio.gather(
            self.healthz(), self.endpoint("varz"), self.route_peers(), self.leaf_links(),
            self.endpoint("jsz"))
        return healthy, varz, peers, leafs, jsz
