"""`vault-ha.metrics-alerts`: every node's Prometheus metrics, and the alert rules live.

The console scrapes ``/v1/sys/metrics?format=prometheus`` from every node each
``scrape_interval`` and evaluates the rules of ``config/prometheus/vault-alerts.yml``
(:mod:`opsconsole.alerts.rules`); this scenario seals a standby and measures how long
VaultSealed takes to fire, then that it resolves after the unseal.
"""

from __future__ import annotations

import asyncio
import time

from ...alerts.rules import RULES
from ...probes.vault_metrics import scrape
from ..checks import vault_one_leader, vault_token
from ..engine import Abort, Run, Scenario, outcome

CLUSTER_ALERTS = ("VaultSealed", "VaultDown", "VaultNoLeader")


def _firing(run: Run, name: str, instance: str | None = None) -> bool:
    return any(a.name == name and (instance is None or a.instance == instance)
               for a in run.state.firing_alerts)


class MetricsAlerts(Scenario):
    id = "vault-ha.metrics-alerts"
    title = "every node exports Prometheus metrics; a sealed node fires VaultSealed " \
            "within 2 scrape intervals, resolved after the unseal"

    def steady_state(self):
        return [vault_one_leader()]

    def plan(self):
        return ["scrape every node", "no sealed/down/no-leader alert is firing",
                "seal a standby", "VaultSealed fires for it within 2 scrape intervals",
                "unseal", "VaultSealed resolves"]

    async def method(self, run: Run) -> None:
        cluster = run.inventory.vault
        assert cluster is not None
        interval = cluster.scrape_interval
        token = vault_token(run)
        scrapes = await asyncio.gather(*(scrape(run.http, str(n.api_addr), token)
                                         for n in cluster.nodes))
        by_node = {n.name: s for n, s in zip(cluster.nodes, scrapes, strict=True)}
        await run.record("every node serves Prometheus metrics", outcome(
            all(s is not None and s.families > 0 for s in by_node.values()),
            **{n: (f"{s.families} metric families" if s else "scrape failed")
               for n, s in by_node.items()}))
        await run.record("the rules' metrics are exported by every node", outcome(
            all(s is not None and s.value("vault_core_unsealed") is not None
                and s.value("vault_core_active") is not None for s in by_node.values()),
            rules=[r.name for r in RULES]))
        await run.wait_until("sealed/down/no-leader alerts to be clear",
                             lambda: not any(_firing(run, a) for a in CLUSTER_ALERTS),
                             6 * interval)
        await run.record("no sealed, down or no-leader alert firing before the fault",
                         outcome(True, firing=[a.name for a in run.state.firing_alerts]))

        victim = next((n for n, v in run.state.vault.items()
                       if v.reachable and not v.leader and not v.sealed), None)
        if victim is None:
            raise Abort("no unsealed standby to seal")
        started = time.monotonic()
        fault = await run.inject("vault.seal", victim)
        try:
            took = await run.wait_until(f"VaultSealed to fire for {victim}",
                                        lambda: _firing(run, "VaultSealed", victim),
                                        4 * interval + 10)
        except Abort:
            took = None
        run.metric("scrape_interval_s", interval, "s")
        if took is not None:
            run.metric("sealed_alert_seconds", time.monotonic() - started, "s")
        await run.record("VaultSealed fires within 2 scrape intervals", outcome(
            took is not None and took <= 2 * interval, victim=victim,
            seconds=None if took is None else round(took, 2), limit_s=2 * interval))
        await run.record("no VaultNoLeader while only a standby is sealed",
                         outcome(not _firing(run, "VaultNoLeader"),
                                 leader=run.state.vault_leader))
        await run.heal(fault)
        healed = time.monotonic()
        await run.wait_until(f"VaultSealed to resolve for {victim}",
                             lambda: not _firing(run, "VaultSealed", victim), 30 + 2 * interval)
        run.metric("sealed_alert_resolve_seconds", time.monotonic() - healed, "s")
        await run.record("VaultSealed resolves after the unseal", outcome(True, victim=victim))
