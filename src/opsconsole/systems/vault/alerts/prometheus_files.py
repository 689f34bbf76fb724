"""Prometheus files for a concrete cluster: the alert rules and a scrape config.

``config/prometheus/`` ships the rules and a scrape-config template; the lab writes the
same rules plus a scrape config with its own node addresses to ``<lab>/prometheus/`` so
``prometheus --config.file=<lab>/prometheus/prometheus.yml`` watches the lab as is.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

import yaml

from .rules import as_prometheus_groups


def scrape_config(vault_addrs: list[str], interval_s: float,
                  opsconsole_port: int = 9464, ca_file: Path | None = None) -> dict:
    targets = [urlparse(a).netloc for a in vault_addrs]
    every = f"{interval_s:g}s"
    vault: dict = {"job_name": "vault", "metrics_path": "/v1/sys/metrics",
                   "params": {"format": ["prometheus"]},
                   "static_configs": [{"targets": targets}]}
    if vault_addrs and vault_addrs[0].startswith("https:"):
        vault["scheme"] = "https"
        if ca_file is not None:
            vault["tls_config"] = {"ca_file": str(ca_file)}
    return {
        "global": {"scrape_interval": every, "evaluation_interval": every},
        "rule_files": ["vault-alerts.yml"],
        "scrape_configs": [
            vault,
            {"job_name": "opsconsole",
             "static_configs": [{"targets": [f"127.0.0.1:{opsconsole_port}"]}]},
        ],
    }


def write(directory: Path, vault_addrs: list[str], interval_s: float,
          ca_file: Path | None = None) -> Path:
    """Write ``prometheus.yml`` and ``vault-alerts.yml`` into ``directory``; return the former."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vault-alerts.yml").write_text(
        yaml.safe_dump(as_prometheus_groups(), sort_keys=False, width=200))
    path = directory / "prometheus.yml"
    path.write_text(yaml.safe_dump(scrape_config(vault_addrs, interval_s, ca_file=ca_file),
                                   sort_keys=False))
    return path
