"""`opsconsole smoke`: nine phases on the lab, a signed boot transcript, clear failures."""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import urllib.request

from opsconsole.lab import Lab

from ..helpers import run_cli, wait_until

PHASES = ["1 configuration", "2 boot", "3 service health", "4 authentication",
          "5 control path", "6 provisioning", "7 end-to-end workflow", "8 resources",
          "9 security"]


def _transcript(report) -> tuple[dict, object]:
    [path] = [p for p in report.iterdir() if re.fullmatch(
        r"boot_transcript_\d{8}-\d{6}\.json", p.name)]
    return json.loads(path.read_text()), path


def test_smoke_passes_on_the_lab_with_a_verifiable_boot_transcript(lab: Lab, tmp_path) -> None:
    report = tmp_path / "out"
    out = run_cli("smoke", "--report", str(report), "--json", "--state-dir",
                  str(lab.dir.root), timeout=300)
    assert out.returncode == 0, out.stderr[-3000:] + out.stdout[-3000:]
    summary = json.loads(out.stdout)
    assert summary["status"] == "pass" and summary["summary"]["failed"] == 0
    doc, path = _transcript(report)
    assert [p["phase"] for p in doc["phases"]] == PHASES
    assert doc["status"] == "pass" and doc["session_id"] and doc["version"]
    assert {"hostname", "kernel", "arch", "cores", "memory_bytes"} <= set(doc["system"])
    s = doc["summary"]
    assert s["total"] == s["passed"] + s["warned"] + s["unknown"] and s["failed"] == 0
    # the lab has no SSH hosts: that check says so (unknown), it does not pass
    assert doc["unknowns"] == ["3 service health: SSH hosts: reachable, every host check "
                               "passes UNKNOWN (no [[ssh.hosts]] in the inventory: nothing "
                               "to check)"]
    assert doc["performance"]["time_to_healthy_s"] > 0
    assert 0 < doc["performance"]["lab_rss_mib_total"] < 2048
    assert doc["security"]["no secret material in config, logs or reports"]["status"] == "pass"
    assert "NATS: every node healthy, every leaf connected" in doc["service_health"]
    assert len(doc["digests"]["tool_sha256"]) == 64
    for name in ("junit.xml", "report.md", "transcript.json", "journal.jsonl"):
        assert (report / name).exists(), name
    assert run_cli("verify", str(path)).returncode == 0
    token = (lab.dir.secrets / "vault-root-token").read_text().strip()
    for f in report.iterdir():
        assert token not in f.read_text(), f"root token leaked into {f.name}"
    tampered = path.read_text().replace('"status": "pass"', '"status": "fail"', 1)
    path.write_text(tampered)
    bad = run_cli("verify", str(path))
    assert bad.returncode == 1 and "modified" in bad.stdout + bad.stderr


def test_smoke_names_the_failing_phase_and_check_when_a_node_is_stopped(
        lab: Lab, tmp_path) -> None:
    victim = lab.dir.load().procs["nats-3"]
    os.kill(victim.pid, signal.SIGSTOP)
    try:
        out = run_cli("smoke", "--report", str(tmp_path / "out"), "--boot-timeout", "8",
                      "--state-dir", str(lab.dir.root), timeout=300)
    finally:
        os.kill(victim.pid, signal.SIGCONT)
    assert out.returncode == 1, out.stderr[-3000:]
    assert "smoke FAIL" in out.stderr
    assert "failed: 2 boot: lab up" in out.stderr
    assert "failed: 3 service health: NATS: every node healthy" in out.stderr
    assert "Traceback" not in out.stderr
    doc, _ = _transcript(tmp_path / "out")
    assert doc["status"] == "fail" and doc["summary"]["failed"] >= 2
    monitor = lab.topology().central[2].monitor_url

    def healthy() -> bool:
        try:
            ca = lab.ca_cert
            ctx = ssl.create_default_context(cafile=str(ca)) if ca else None
            return urllib.request.urlopen(f"{monitor}/healthz", timeout=2,
                                          context=ctx).status == 200
        except OSError:
            return False

    wait_until(healthy, 30, "nats-3 healthy again (the shared lab, for the next tests)")


def test_safe_mode_enforces_the_memory_budget_and_full_mode_reports_it(
        lab: Lab, tmp_path) -> None:
    safe = run_cli("smoke", "--memory-budget-mib", "10", "--report", str(tmp_path / "safe"),
                   "--state-dir", str(lab.dir.root), timeout=300)
    assert safe.returncode == 1
    assert "failed: 8 resources: total RSS within the 10 MiB budget (safe mode) FAIL" \
        in safe.stderr
    full = run_cli("smoke", "--full", "--memory-budget-mib", "10", "--json",
                   "--report", str(tmp_path / "full"), "--state-dir", str(lab.dir.root),
                   timeout=300)
    assert full.returncode == 0, full.stderr[-2000:]
    doc, _ = _transcript(tmp_path / "full")
    resources = next(p for p in doc["phases"] if p["id"] == "smoke.resources")
    budget = next(c for c in resources["checks"] if "budget" in c["name"])
    assert budget["status"] == "warn" and budget["evidence"]["total_rss_mib"] > 10
