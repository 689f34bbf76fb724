"""Alert rules: the shipped Prometheus file, the console's live evaluation, the counters."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import yaml

from opsconsole.alerts import requests
from opsconsole.alerts.rules import AlertEngine, ErrorRateWindow, Round, as_prometheus_groups
from opsconsole.alerts.scrape import Scrape
from opsconsole.core.events import AlertChanged
from opsconsole.lab import Lab
from opsconsole.lab.ports import free_ports
from opsconsole.probes.vault_metrics import scrape
from opsconsole.targets.vault import VaultApi

from .tui_fixtures import healthy_cluster, idle_session, make_app, until

CONFIG = Path(__file__).resolve().parents[1] / "config" / "prometheus"


def test_shipped_rules_are_the_rules_the_console_evaluates() -> None:
    shipped = yaml.safe_load((CONFIG / "vault-alerts.yml").read_text())
    assert shipped == as_prometheus_groups()
    names = [r["alert"] for r in shipped["groups"][0]["rules"]]
    assert {"VaultSealed", "VaultNoLeader", "VaultHighLatency", "VaultHighErrorRate"} <= set(
        names)


def _promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        if os.geteuid() == 0:  # `make venv` installs Debian's prometheus when root
            pytest.fail("promtool missing although `make venv` runs as root")
        pytest.skip("promtool not installed (Debian package prometheus needs root)")
    return tool


def test_promtool_accepts_the_rules_and_scrape_configs(lab: Lab) -> None:
    tool = _promtool()
    for args in (["check", "rules", str(CONFIG / "vault-alerts.yml")],
                 ["check", "config", str(CONFIG / "prometheus.yml")],
                 ["check", "config", str(lab.dir.root / "prometheus" / "prometheus.yml")]):
        out = subprocess.run([tool, *args], capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
    lab_conf = yaml.safe_load((lab.dir.root / "prometheus" / "prometheus.yml").read_text())
    [vault_job] = [j for j in lab_conf["scrape_configs"] if j["job_name"] == "vault"]
    lab_targets = vault_job["static_configs"][0]["targets"]
    assert sorted(lab_targets) == sorted(n.api_addr.split("//")[1] for n in lab.topology().vault)


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


async def test_vault_calls_are_counted_and_served_for_prometheus(lab: Lab) -> None:
    addr = lab.env()["VAULT_ADDR"]
    [port] = free_ports(1)
    requests.serve(port)
    async with aiohttp.ClientSession() as http:
        before_total, before_err = requests.totals()
        status, _ = await VaultApi(http, addr, None).call("GET", "sys/leader")
        assert status == 200
        with pytest.raises(aiohttp.ClientError):
            await VaultApi(http, "http://127.0.0.1:9", None).call("GET", "sys/leader")
        total, errors = requests.totals()
        assert (total - before_total, errors - before_err) == (2, 1)
        metrics = await scrape(http, addr, None)
        assert metrics is not None and metrics.value("vault_core_unsealed") == 1
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert f'opsconsole_vault_requests_total{{addr="{addr}",outcome="ok"}}' in text
    assert 'addr="http://127.0.0.1:9",outcome="error"' in text


async def test_health_pane_shows_firing_alerts() -> None:
    session = idle_session()
    app = make_app(session)
    async with app.run_test(size=(160, 48)) as pilot:
        healthy_cluster(session)
        pane = app.query_one("#pane-health")
        await until(pilot, lambda: "alerts:" in str(pane.border_subtitle), "the subtitle")
        assert "alerts: none firing" in str(pane.border_subtitle)
        session.bus.publish(AlertChanged(name="VaultSealed", instance="vault-2",
                                         state="firing", severity="critical",
                                         summary="Vault node vault-2 is sealed"))
        await until(pilot, lambda: "VaultSealed" in str(pane.border_subtitle), "the alert")
        assert "VaultSealed(vault-2)" in str(pane.border_subtitle)
        assert pane.has_class("-alerting")
        assert any("VaultSealed FIRING" in e.text for e in session.state.timeline)
        session.bus.publish(AlertChanged(name="VaultSealed", instance="vault-2",
                                         state="resolved"))
        await until(pilot, lambda: "VaultSealed" not in str(pane.border_subtitle),
                    "the alert to clear")
        assert "alerts: none firing" in str(pane.border_subtitle)
