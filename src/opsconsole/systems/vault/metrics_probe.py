"""Scrape every Vault node's Prometheus metrics and evaluate the alert rules live."""

from __future__ import annotations

import asyncio
import time

import aiohttp

from ...core.events import Event
from ...probes.base import Probe
from ...targets.http import NETWORK_ERRORS
from . import request_metrics as requests
from .alerts.rules import AlertEngine, ErrorRateWindow, Round
from .alerts.scrape import Scrape
from .client import VaultApi
from .config import VaultCluster

METRICS_PATH = "/v1/sys/metrics?format=prometheus"


async def scrape(api: VaultApi) -> Scrape | None:
    """One node's metrics; None when the node does not answer (Prometheus: ``up == 0``);
    an ``unavailable`` scrape when it answers without metrics."""
    try:
        async with api.session.get(api.addr + METRICS_PATH, headers=api.headers(), ssl=api.ssl,
                                   timeout=aiohttp.ClientTimeout(total=api.timeout)) as r:
            if r.status != 200:  # it answered: up (the VaultDown rule), without metrics
                body = (await r.text())[:200].replace("\n", " ")
                return Scrape(unavailable=f"HTTP {r.status}: {body}".strip())
            return Scrape.parse(await r.text())
    except NETWORK_ERRORS:
        return None


class VaultMetricsProbe(Probe):
    def __init__(self, session: aiohttp.ClientSession, cluster: VaultCluster) -> None:
        self.name = f"vault-metrics/{cluster.name}"
        self.interval = cluster.scrape_interval
        self.session = session
        self.cluster = cluster
        self.engine = AlertEngine()
        self.errors = ErrorRateWindow()
        self.last: Round | None = None

    async def sample(self) -> list[Event]:
        nodes = self.cluster.nodes
        results = await asyncio.gather(*(scrape(VaultApi.for_cluster(
            self.session, self.cluster, n.api_addr, self.timeout)) for n in nodes))
        now = time.time()
        total, failed = requests.totals()
        self.last = Round({n.name: s for n, s in zip(nodes, results, strict=True)},
                          self.errors.add(now, total, failed))
        return list(self.engine.evaluate(now, self.last))
