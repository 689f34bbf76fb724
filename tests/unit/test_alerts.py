"""Alert rules: the shipped Prometheus file is the console's, `for` durations, the
error-rate window."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from opsconsole.systems.vault.alerts.rules import (
    AlertEngine,
    ErrorRateWindow,
    Round,
    as_prometheus_groups,
)
from opsconsole.systems.vault.alerts.scrape import Scrape

CONFIG = Path(__file__).resolve().parents[2] / "config" / "prometheus"


def test_shipped_rules_are_the_rules_the_console_evaluates() -> None:
    shipped = yaml.safe_load((CONFIG / "vault-alerts.yml").read_text())
    assert shipped == as_prometheus_groups()
    names = [r["alert"] for r in shipped["groups"][0]["rules"]]
    assert {"VaultSealed", "VaultNoLeader", "VaultHighLatency", "VaultHighErrorRate"} <= set(
        names)


def _exposition(active: int, unsealed: int, p99_ms: float = 1.0) -> Scrape:
    return Scrape.parse(
        f"# TYPE vault_core_active gauge\nvault_core_active{{cluster=\"c\"}} {active}\n"
        f"# TYPE vault_core_unsealed gauge\nvault_core_unsealed{{cluster=\"c\"}} {unsealed}\n"
        "# TYPE vault_core_handle_request summary\n"
        f"vault_core_handle_request{{quantile=\"0.99\"}} {p99_ms}\n"
        "vault_core_handle_request_sum 1\nvault_core_handle_request_count 1\n")


def test_for_durations_hold_an_alert_pending_before_it_fires() -> None:
    engine = AlertEngine()
    leaderless = Round({"v1": _exposition(0, 1), "v2": _exposition(0, 1)}, None)

    def states(ts: float, rnd: Round) -> dict[str, str]:
        return {f"{e.name}/{e.instance}": e.state for e in engine.evaluate(ts, rnd)}

    assert states(0, leaderless) == {"VaultNoLeader/cluster": "pending"}
    assert states(5, leaderless) == {}  # still pending: no change to report
    assert states(10, leaderless) == {"VaultNoLeader/cluster": "firing"}
    sealed = Round({"v1": _exposition(1, 1), "v2": _exposition(0, 0), "v3": None}, None)
    assert states(11, sealed) == {"VaultNoLeader/cluster": "resolved",
                                  "VaultSealed/v2": "firing", "VaultDown/v3": "firing"}
    slow = Round({"v1": _exposition(1, 1, p99_ms=80.0)}, 0.05)
    assert states(12, slow) == {"VaultSealed/v2": "resolved", "VaultDown/v3": "resolved",
                                "VaultHighLatency/v1": "pending",
                                "VaultHighErrorRate/cluster": "pending"}
    assert states(42, slow) == {"VaultHighLatency/v1": "firing",
                                "VaultHighErrorRate/cluster": "firing"}


def test_error_rate_needs_enough_requests_and_forgets_old_ones() -> None:
    window = ErrorRateWindow(window_s=60, min_requests=20)
    assert window.add(0, 0, 0) is None
    assert window.add(10, 10, 5) is None  # 10 requests: too few to call it a rate
    assert window.add(20, 100, 5) == pytest.approx(0.05)
    assert window.add(90, 200, 5) == pytest.approx(0.0)  # the failures left the window




def test_a_node_answering_without_metrics_is_up_and_a_silent_one_is_down() -> None:
    """Issue 17: OpenBao without telemetry answers the scrape with HTTP 400. It is up
    (no VaultDown, nothing judged on absent metrics); a node that does not answer is down."""
    engine = AlertEngine()
    answered = Round({"v1": _exposition(1, 1), "v2": Scrape(unavailable="HTTP 400: no")}, None)
    assert [e for e in engine.evaluate(100.0, answered) if e.state == "firing"] == []
    silent = Round({"v1": _exposition(1, 1), "v2": None}, None)
    fired = {f"{e.name}/{e.instance}" for e in engine.evaluate(200.0, silent)
             if e.state == "firing"}
    assert fired == {"VaultDown/v2"}
