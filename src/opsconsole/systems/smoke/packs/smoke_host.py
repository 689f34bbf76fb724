"""The `smoke` pack, phases 8-9: resources of the lab's processes, and security.

Resources: RSS and CPU of every lab process (recorded nodes and their children, e.g.
each vault instance's leaf server and Vault Manager). SAFE mode (the default) fails
when the total RSS exceeds the budget; full mode only reports.

Security: every lab listener is on loopback (the OpenBao nodes listen inside their own
network namespaces and do not appear here) on a port the lab allocated to that node;
no secret value appears in the config, the lab's logs or the reports; the transport of
every configured endpoint (TLS or plaintext; plaintext is a warning off loopback and the
lab's private network); the lab's secret files are mode 0600 in a 0700 directory.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import stat
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import psutil
from pydantic import PositiveFloat

from ....scenarios.engine import Outcome, Run, ScenarioOptions, option, outcome
from .smoke import SmokePhase

DEFAULT_BUDGET_MIB = 2048
LAB_NETWORK = ipaddress.ip_network("10.231.0.0/16")  # the lab's namespaces (lab/netns.py)
MAX_SCAN_BYTES = 64 * 2**20


def _lab_processes(run: Run) -> list[psutil.Process]:
    return run.lab.marked_processes() if run.session.lab is not None else []


def _label(p: psutil.Process, names: dict[int, str]) -> str:
    if p.pid in names:
        return names[p.pid]
    try:
        cmd = p.cmdline()
    except psutil.Error:
        return f"pid {p.pid}"
    module = next((c for c in cmd if c.startswith(("opsconsole.", "opsconsole_lab."))), None)
    if module:
        return module
    return Path(cmd[0]).name if cmd else f"pid {p.pid}"


class ResourcesOptions(ScenarioOptions):
    mode: Literal["safe", "full"] = option(
        "safe", "safe: enforce the memory budget; full: report only", "safe|full")
    memory_budget_mib: PositiveFloat = option(
        DEFAULT_BUDGET_MIB, "total RSS budget of the lab's processes, MiB", "MIB")


class Resources(SmokePhase):
    id = "smoke.resources"
    title = "performance and resources: RSS and CPU of every lab process, memory budget"
    Options = ResourcesOptions
    options: ResourcesOptions

    async def method(self, run: Run) -> None:
        if run.session.lab is None:
            await run.record("per-process RSS and CPU of every lab process", (
                "unknown", {"reason": "no lab: use SSH host checks (disk, memory) for real "
                                      "hosts"}))
            return
        names = {rec.pid: name for name, rec in run.lab.dir.load().procs.items()}
        found = _lab_processes(run)
        for p in found:
            try:
                p.cpu_percent(None)
            except psutil.Error:
                continue
        await asyncio.sleep(1.0)  # CPU percent needs an interval
        rows: list[dict[str, Any]] = []
        for p in found:
            try:
                rows.append({"process": _label(p, names), "pid": p.pid,
                             "rss_mib": round(p.memory_info().rss / 2**20, 1),
                             "cpu_percent": round(p.cpu_percent(None), 1)})
            except psutil.Error:
                continue  # exited in between
        rows.sort(key=lambda r: -r["rss_mib"])
        total = sum(r["rss_mib"] for r in rows)
        cpu = sum(r["cpu_percent"] for r in rows)
        run.metric("lab_processes", len(rows))
        run.metric("lab_rss_mib_total", total, "MiB")
        run.metric("lab_cpu_percent_total", cpu, "%")
        await run.record("per-process RSS and CPU of every lab process", outcome(
            bool(rows), processes=rows, total_rss_mib=round(total, 1),
            total_cpu_percent=round(cpu, 1)))
        within = total <= self.options.memory_budget_mib
        if self.options.mode == "full":
            await run.record("memory budget (full mode: reported, not enforced)", (
                "pass" if within else "warn",
                {"total_rss_mib": round(total, 1), "budget_mib": self.options.memory_budget_mib}))
        else:
            await run.record(f"total RSS within the {self.options.memory_budget_mib:g} MiB budget "
                             "(safe mode)", outcome(within, total_rss_mib=round(total, 1),
                                                    budget_mib=self.options.memory_budget_mib))


class Security(SmokePhase):
    id = "smoke.security"
    title = "security: loopback-only listeners on allocated ports, no secrets in config, " \
            "logs or reports, TLS status per endpoint, secret files 0600"

    async def method(self, run: Run) -> None:
        if run.session.lab is not None:
            await run.record("lab listeners only on loopback, on allocated ports",
                             _listeners(run))
        await run.record("no secret material in config, logs or reports",
                         await asyncio.to_thread(_secret_scan, run))
        await run.record("TLS status per endpoint", _tls(run))
        if run.session.lab is not None:
            await run.record("lab secret files mode 0600 (directory 0700)", _secret_modes(run))


def _listeners(run: Run) -> Outcome:
    state = run.lab.dir.load()
    names = {rec.pid: name for name, rec in state.procs.items()}
    pids = {p.pid: p for p in _lab_processes(run)}
    rows, bad = [], []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status != psutil.CONN_LISTEN or conn.pid not in pids:
            continue
        owner = _label(pids[conn.pid], names)
        ip, port = conn.laddr.ip, conn.laddr.port
        loopback = ipaddress.ip_address(ip).is_loopback
        allocated = state.ports.get(names.get(conn.pid, ""), {})
        expected = port in allocated.values() if conn.pid in names else True  # instance
        rows.append(f"{owner} {ip}:{port}")
        if not loopback or not expected:
            bad.append(f"{owner} {ip}:{port}" + ("" if loopback else " (not loopback)")
                       + ("" if expected else " (port not allocated to it)"))
    return outcome(bool(rows) and not bad, listeners=sorted(rows), unexpected=bad,
                   note="OpenBao nodes listen inside their own namespaces when run as root")


def _secret_values(run: Run) -> list[str]:
    values: list[str] = []
    if run.session.lab is not None and run.lab.dir.secrets.is_dir():
        for f in run.lab.dir.secrets.iterdir():
            try:
                text = f.read_text().strip()
            except (OSError, UnicodeDecodeError):
                continue
            values.append(text)
            try:
                data = json.loads(text)
            except ValueError:
                continue
            if isinstance(data, dict):
                values += [v for v in data.values() if isinstance(v, str)]
    vault = run.inventory.vault
    if vault is not None and vault.token is not None:
        with contextlib.suppress(Exception):  # an unresolvable token cannot leak
            values.append(vault.token.resolve())
    return sorted({v for v in values if len(v) >= 12})


def _scan_targets(run: Run) -> list[Path]:
    files: list[Path] = []
    source = run.session.inventory.source
    if source is not None and source.exists():
        files.append(source)
    if run.session.lab is not None:
        files += [p for p in run.lab.dir.root.rglob("*.log") if p.is_file()]
    report_dir = getattr(run.session, "report_dir", None)
    if report_dir is not None and Path(report_dir).is_dir():
        files += [p for p in Path(report_dir).iterdir() if p.is_file()]
    return files


def _secret_scan(run: Run) -> Outcome:
    secrets = [s.encode() for s in _secret_values(run)]
    files = _scan_targets(run)
    hits: list[str] = []
    scanned = 0
    for path in files:
        try:
            data = path.read_bytes()[:MAX_SCAN_BYTES]
        except OSError:
            continue
        scanned += len(data)
        if any(s in data for s in secrets):
            hits.append(str(path))
    return outcome(not hits, files=len(files), bytes_scanned=scanned,
                   secrets_checked=len(secrets), files_with_secrets=hits)


def _endpoints(run: Run) -> dict[str, str]:
    inv = run.inventory
    out: dict[str, str] = {}
    for c in inv.nats:
        for n in c.nodes:
            out[f"nats {n.name}"] = n.client_url
            out[f"nats {n.name} monitor"] = str(n.monitor_url)
    for lf in inv.leaves:
        out[f"leaf {lf.name}"] = lf.client_url
    if inv.vault:
        for v in inv.vault.nodes:
            out[f"vault {v.name}"] = str(v.api_addr)
    if inv.aws and inv.aws.endpoint_url:
        out["aws"] = str(inv.aws.endpoint_url)
    if inv.provisioner:
        out["provisioning"] = str(inv.provisioner.base_url)
    return out


def _tls(run: Run) -> Outcome:
    report: dict[str, str] = {}
    exposed: list[str] = []
    for name, url in _endpoints(run).items():
        parsed = urlparse(url)
        secure = parsed.scheme in ("https", "tls")
        try:
            ip = ipaddress.ip_address(parsed.hostname or "")
            private = ip.is_loopback or ip in LAB_NETWORK
        except ValueError:
            private = parsed.hostname == "localhost"
        if secure:
            report[name] = "TLS"
        elif private:
            report[name] = "plaintext (loopback / lab-private network)"
        else:
            report[name] = "PLAINTEXT"
            exposed.append(name)
    status = "warn" if exposed else "pass"
    return status, {"endpoints": report, "plaintext_off_loopback": exposed}


def _secret_modes(run: Run) -> Outcome:
    d = run.lab.dir.secrets
    dir_mode = stat.S_IMODE(os.stat(d).st_mode)
    wrong = {f.name: oct(stat.S_IMODE(f.stat().st_mode)) for f in d.iterdir()
             if stat.S_IMODE(f.stat().st_mode) != 0o600}
    return outcome(dir_mode == 0o700 and not wrong, directory=oct(dir_mode),
                   files=sum(1 for _ in d.iterdir()), wrong_modes=wrong)


SCENARIOS_8_9 = [Resources, Security]
