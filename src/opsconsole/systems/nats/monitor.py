"""NATS server monitoring endpoints (/varz /routez /leafz /healthz /jsz)."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp

from ...targets.http import Json, get_json, ssl_for
from ...targets.tls import TlsClient


class NatsMonitor:
    def __init__(self, session: aiohttp.ClientSession, monitor_url: str,
                 timeout: float = 2.0, tls: TlsClient | None = None) -> None:
        self.session = session
        self.url = monitor_url.rstrip("/")
        self.timeout = timeout
        self.tls = tls  # https monitoring: the target's CA

    @property
    def ssl(self) -> ssl.SSLContext | bool:
        return ssl_for(self.tls, self.url, "nats monitor")

    async def endpoint(self, name: str) -> Json:
        _, data = await get_json(self.session, f"{self.url}/{name}", timeout=self.timeout,
                                 ssl=self.ssl)
        return data

    async def healthz(self) -> bool:
        status, _ = await get_json(self.session, f"{self.url}/healthz", timeout=self.timeout,
                                   ssl=self.ssl)
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
