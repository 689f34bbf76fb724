"""The Vault alert rules and their live evaluation.

Each rule carries the PromQL of ``config/prometheus/vault-alerts.yml`` verbatim (a test
keeps the two equal) and a Python condition that computes the same thing from one round
of scrapes: ``{instance: value}`` for every instance where the expression would return a
sample. :class:`AlertEngine` applies the ``for`` duration the way Prometheus does
(pending until the condition has held that long, then firing; resolved when it stops).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..events import AlertChanged
from .scrape import Scrape

Conditions = Callable[["Round"], dict[str, float]]


@dataclass
class Round:
    """One evaluation: every node's scrape (None when it failed) and the error rate."""

    scrapes: dict[str, Scrape | None]
    error_rate: float | None  # over the last minute; None with too few requests


def _sealed(r: Round) -> dict[str, float]:
    return {node: 0.0 for node, s in r.scrapes.items()
            if s is not None and s.value("vault_core_unsealed") == 0}


def _down(r: Round) -> dict[str, float]:
    return {node: 0.0 for node, s in r.scrapes.items() if s is None}


def _no_leader(r: Round) -> dict[str, float]:
    values = [v for s in r.scrapes.values() if s is not None
              and (v := s.value("vault_core_active")) is not None]
    return {"cluster": sum(values)} if values and sum(values) < 1 else {}


def _high_latency(r: Round) -> dict[str, float]:
    out = {}
    for node, s in r.scrapes.items():
        p99 = s.value("vault_core_handle_request", quantile="0.99") if s else None
        if p99 is not None and not math.isnan(p99) and p99 > 50:
            out[node] = p99
    return out


def _high_error_rate(r: Round) -> dict[str, float]:
    return {"cluster": r.error_rate} if r.error_rate is not None and r.error_rate > 0.01 \
        else {}


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    for_s: float
    severity: str
    summary: str
    condition: Conditions

    def as_prometheus(self) -> dict[str, Any]:
        return {"alert": self.name, "expr": self.expr, "for": f"{self.for_s:g}s",
                "labels": {"severity": self.severity},
                "annotations": {"summary": self.summary}}


RULES: tuple[Rule, ...] = (
    Rule("VaultSealed", "vault_core_unsealed == 0", 0, "critical",
         "Vault node {{ $labels.instance }} is sealed", _sealed),
    Rule("VaultDown", 'up{job="vault"} == 0', 0, "critical",
         "Vault node {{ $labels.instance }} does not answer the metrics scrape", _down),
    Rule("VaultNoLeader", "sum(vault_core_active) < 1", 10, "critical",
         "No Vault node is active (no leader)", _no_leader),
    Rule("VaultHighLatency", 'vault_core_handle_request{quantile="0.99"} > 50', 30, "warning",
         "Vault node {{ $labels.instance }} request p99 above 50 ms", _high_latency),
    Rule("VaultHighErrorRate",
         'sum(rate(opsconsole_vault_requests_total{outcome="error"}[1m])) / '
         'sum(rate(opsconsole_vault_requests_total[1m])) > 0.01', 30, "warning",
         "More than 1 % of Vault requests fail", _high_error_rate),
)


def as_prometheus_groups() -> dict[str, Any]:
    """The rules file's content (what ``config/prometheus/vault-alerts.yml`` holds)."""
    return {"groups": [{"name": "vault", "rules": [r.as_prometheus() for r in RULES]}]}


class ErrorRateWindow:
    """Failed / all requests over the last ``window_s``, from cumulative counters."""

    def __init__(self, window_s: float = 60.0, min_requests: int = 20) -> None:
        self.window_s = window_s
        self.min_requests = min_requests
        self._points: deque[tuple[float, float, float]] = deque()

    def add(self, ts: float, total: float, errors: float) -> float | None:
        self._points.append((ts, total, errors))
        while len(self._points) > 2 and self._points[1][0] <= ts - self.window_s:
            self._points.popleft()
        _, total0, errors0 = self._points[0]
        done = total - total0
        return (errors - errors0) / done if done >= self.min_requests else None


class AlertEngine:
    """Pending/firing/resolved per (rule, instance), as Prometheus would report them."""

    def __init__(self, rules: tuple[Rule, ...] = RULES) -> None:
        self.rules = rules
        self.active: dict[tuple[str, str], tuple[str, float]] = {}  # -> (state, since)

    def evaluate(self, now: float, rnd: Round) -> list[AlertChanged]:
        changes: list[AlertChanged] = []
        for rule in self.rules:
            hits = rule.condition(rnd)
            for instance, value in hits.items():
                key = (rule.name, instance)
                state, since = self.active.get(key, ("", now))
                new = "firing" if now - since >= rule.for_s else "pending"
                if new != state:
                    changes.append(self._event(rule, instance, new, value, since, now))
                self.active[key] = (new, since)
            for key in [k for k in self.active if k[0] == rule.name and k[1] not in hits]:
                state, since = self.active.pop(key)
                changes.append(self._event(rule, key[1], "resolved", 0.0, since, now))
        return changes

    @staticmethod
    def _event(rule: Rule, instance: str, state: str, value: float, since: float,
               now: float) -> AlertChanged:
        return AlertChanged(ts=now, name=rule.name, instance=instance, state=state,
                            value=value, severity=rule.severity, since=since,
                            summary=rule.summary.replace("{{ $labels.instance }}", instance))
