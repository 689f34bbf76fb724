"""Alert rules with real tools: promtool accepts the shipped rules and scrape configs, and
the console's Vault request counters are served for Prometheus."""

from __future__ import annotations

import os
import shutil
import subprocess
import urllib.request
from pathlib import Path

import aiohttp
import pytest
import yaml

from opsconsole.lab import Lab
from opsconsole.lab.ports import free_ports
from opsconsole.systems.vault import request_metrics as requests
from opsconsole.systems.vault.client import VaultApi
from opsconsole.systems.vault.metrics_probe import scrape

CONFIG = Path(__file__).resolve().parents[2] / "config" / "prometheus"


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


async def test_vault_calls_are_counted_and_served_for_prometheus(lab: Lab) -> None:
    addr = lab.env()["VAULT_ADDR"]
    [port] = free_ports(1)
    requests.serve(port)
    async with aiohttp.ClientSession() as http:
        before_total, before_err = requests.totals()
        status, _ = await VaultApi(http, addr, None, ssl=lab.ssl_context()).call("GET",
                                                                                  "sys/leader")
        assert status == 200
        with pytest.raises(aiohttp.ClientError):
            await VaultApi(http, "http://127.0.0.1:9", None).call("GET", "sys/leader")
        total, errors = requests.totals()
        assert (total - before_total, errors - before_err) == (2, 1)
        metrics = await scrape(VaultApi(http, addr, None, ssl=lab.ssl_context()))
        assert metrics is not None and metrics.value("vault_core_unsealed") == 1
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert f'opsconsole_vault_requests_total{{addr="{addr}",outcome="ok"}}' in text
    assert 'addr="http://127.0.0.1:9",outcome="error"' in text


