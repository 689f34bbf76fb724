"""`vault-ha.metrics-alerts`: every node's Prometheus metrics, and the alert rules live.

The console scrapes ``/v1/sys/metrics?format=prometheus`` from every node each
``scrape_interval`` and evaluates the rules of ``config/prometheus/vault-alerts.yml``
(:mod:`opsconsole.alerts.rules`); this scenario seals a standby and measures how long
VaultSealed takes to fire, then that it resolves after the unseal.
"""

from __future__ import annotations

import asyncio
import time

from ....scenarios.engine import Abort, Check, Outcome, Run, Scenario, outcome
from ..alerts.rules import RULES
from ..checks import vault_api, vault_one_leader
from ..metrics_probe import scrape

CLUSTER_ALERTS = ("VaultSealed", "VaultDown", "VaultNoLeader")


def _firing(run: Run, name: str, instance: str | None = None) -> bool:
    return any(a.name == name and (instance is None or a.instance == instance)
               for a in run.state.vault.firing_alerts)


class MetricsAlerts(Scenario):
    id = "vault-ha.metrics-alerts"
    title = "every node exports Prometheus metrics; a sealed node fires VaultSealed " \
            "within 2 scrape intervals, resolved after the unseal"
    mutates = ("seal an unsealed standby, then unseal it (fault vault.seal)",)
    observes_read_only = True  # the metrics and alert checks come before the seal

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
        scrapes = await asyncio.gather(*(scrape(vault_api(run, n.api_addr))
                                         for n in cluster.nodes))
        by_node = {n.name: s for n, s in zip(cluster.nodes, scrapes, strict=True)}
        off = {n: s.unavailable for n, s in by_node.items() if s is not None and s.unavailable}
        if off:  # a capability the target lacks: the alert rules cannot be tested here
            await run.record("every node serves Prometheus metrics", (
                "unknown", {"reason": "metrics not served (enable telemetry with "
                            "prometheus_retention_time)", **off}), abort=True)
        await run.record("every node serves Prometheus metrics", outcome(
            all(s is not None and s.families > 0 for s in by_node.values()),
            **{n: (f"{s.families} metric families" if s else "scrape failed")
               for n, s in by_node.items()}))
        await run.record("the rules' metrics are exported by every node", outcome(
            all(s is not None and s.value("vault_core_unsealed") is not None
                and s.value("vault_core_active") is not None for s in by_node.values()),
            rules=[r.name for r in RULES]))
        await run.expect("no sealed, down or no-leader alert firing before the fault",
                         clear_before_fault, within=6 * interval)

        victim = next((n for n, v in run.state.vault.nodes.items()
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
                                 leader=run.state.vault.leader))
        await run.heal(fault)
        healed = time.monotonic()
        rec = await run.check(Check("VaultSealed resolves after the unseal",
                                    lambda r: resolved_after_unseal(r, victim),
                                    within=30 + 2 * interval))
        if rec.status == "pass":
            run.metric("sealed_alert_resolve_seconds", time.monotonic() - healed, "s")


async def _unsealed_now(run: Run, name: str) -> bool | None:
    """The node's own ``vault_core_unsealed`` gauge, scraped now (None: no answer)."""
    cluster = run.inventory.vault
    assert cluster is not None
    node = next(n for n in cluster.nodes if n.name == name)
    sample = await scrape(vault_api(run, node.api_addr))
    value = sample.value("vault_core_unsealed") if sample is not None else None
    return None if value is None else value == 1


async def clear_before_fault(run: Run) -> Outcome:
    """No cluster alert firing, and the rules' inputs say none should: every node scraped
    now reports unsealed and exactly one is active (so "nothing firing" is not silence)."""
    cluster = run.inventory.vault
    assert cluster is not None
    scrapes = await asyncio.gather(*(scrape(vault_api(run, n.api_addr))
                                     for n in cluster.nodes))
    unsealed = {n.name: (s.value("vault_core_unsealed") if s else None)
                for n, s in zip(cluster.nodes, scrapes, strict=True)}
    active = sum(1 for s in scrapes if s is not None and s.value("vault_core_active") == 1)
    firing = [f"{a.name}({a.instance})" for a in run.state.vault.firing_alerts
              if a.name in CLUSTER_ALERTS]
    if any(v is None for v in unsealed.values()):
        return "unknown", {"reason": "a node's metrics could not be scraped",
                           "unsealed": unsealed}
    return outcome(not firing and all(v == 1 for v in unsealed.values()) and active == 1,
                   firing=firing, unsealed=unsealed, active_nodes=active)


async def resolved_after_unseal(run: Run, victim: str) -> Outcome:
    """VaultSealed no longer fires for the victim *because it is unsealed again* (its own
    gauge, scraped now), not because its metrics went silent."""
    unsealed = await _unsealed_now(run, victim)
    still = _firing(run, "VaultSealed", victim)
    if unsealed is None:
        return "unknown", {"reason": f"{victim}'s metrics could not be scraped",
                           "firing": still}
    return outcome(unsealed and not still, victim=victim, unsealed=unsealed, firing=still)
