"""`opsconsole run lab-faults` on the real lab: verdicts, signed reports, healing after kill -9."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from junitparser import JUnitXml

from opsconsole.faults.ledger import FaultLedger
from opsconsole.lab import Lab

from ..helpers import REPO, run_cli, wait_until

# The NATS system's scenarios, then the Vault system's (systems contribute in order).
LAB_SCENARIOS = ["lab-faults.nats-node-restart", "lab-faults.nats-node-pause",
                 "lab-faults.leaf-hub-cut", "lab-faults.vault-leader-kill",
                 "lab-faults.vault-partition"]


@pytest.fixture(scope="module")
def lab_run(lab: Lab, tmp_path_factory: pytest.TempPathFactory) -> dict:
    report = tmp_path_factory.mktemp("report") / "out"
    out = run_cli("run", "lab-faults", "--report", str(report), "--json",
                  "--state-dir", str(lab.dir.root), timeout=600)
    return {"proc": out, "report": report,
            "results": json.loads(out.stdout) if out.stdout.strip() else []}


def test_run_lab_passes_with_every_scenario(lab_run: dict) -> None:
    out = lab_run["proc"]
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-3000:]
    results = lab_run["results"]
    assert [r["id"] for r in results] == LAB_SCENARIOS
    for r in results:
        assert set(r) == {"id", "status", "reason", "checks", "metrics"}
        assert r["status"] == "pass", r
        for check in r["checks"]:
            assert set(check) >= {"name", "status", "evidence", "duration_s"}
    by_id = {r["id"]: r for r in results}
    assert by_id["lab-faults.vault-leader-kill"]["metrics"]["failover_seconds"] > 0
    assert "rejoin_seconds" in by_id["lab-faults.nats-node-restart"]["metrics"]


def test_report_verifies_and_tampering_is_detected(lab_run: dict, tmp_path: Path) -> None:
    report = lab_run["report"]
    assert {p.name for p in report.iterdir()} >= {"journal.jsonl", "transcript.json",
                                                  "junit.xml", "report.md"}
    ok = run_cli("verify", str(report / "transcript.json"))
    assert ok.returncode == 0, ok.stderr
    for name in ("transcript.json", "journal.jsonl"):
        copy = tmp_path / name.split(".")[0]
        shutil.copytree(report, copy)
        data = bytearray((copy / name).read_bytes())
        data[len(data) // 2] ^= 0x20
        (copy / name).write_bytes(bytes(data))
        bad = run_cli("verify", str(copy / "transcript.json"))
        assert bad.returncode == 1, f"a flipped byte in {name} was not detected"
        assert len(bad.stderr.strip().splitlines()) == 1


def test_junit_has_every_check_and_no_failures(lab_run: dict) -> None:
    xml = JUnitXml.fromfile(str(lab_run["report"] / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    checks = sum(len(r["checks"]) for r in lab_run["results"])
    assert len(cases) == checks + len(LAB_SCENARIOS) and checks >= 30  # + each verdict
    assert xml.failures == 0 and xml.errors == 0 and xml.skipped == 0
    assert {suite.name for suite in xml} == set(LAB_SCENARIOS)
    md = (lab_run["report"] / "report.md").read_text()
    assert all(sid in md for sid in LAB_SCENARIOS) and "**PASS**" in md


def test_partition_minority_cannot_write_majority_can(lab_run: dict) -> None:
    """Runs in CI as root (real network-namespace partition); refuses clearly otherwise."""
    result = next(r for r in lab_run["results"] if r["id"] == "lab-faults.vault-partition")
    if os.geteuid() != 0:
        transcript = json.loads((lab_run["report"] / "transcript.json").read_text())
        sc = next(s for s in transcript["scenarios"] if s["id"] == "lab-faults.vault-partition")
        assert "network namespaces" in sc["reason"]
        return
    checks = {c["name"]: c for c in result["checks"]}
    assert checks["majority accepts writes"]["status"] == "pass"
    minority = checks["minority refuses writes"]
    assert minority["status"] == "pass" and minority["evidence"]["write_exit"] != 0
    assert checks["minority never became leader"]["evidence"]["became_leader"] is False
    assert any(name.endswith("catches up after the heal") and c["status"] == "pass"
               for name, c in checks.items())
    assert "minority_writes_applied_after_heal" in result["metrics"]


def test_no_secret_reaches_the_report(lab: Lab, lab_run: dict) -> None:
    secrets = [f.read_bytes().strip() for f in lab.dir.secrets.iterdir()]
    secrets = [s for s in secrets if s.isascii() and len(s) >= 8]
    assert secrets
    for path in lab_run["report"].iterdir():
        data = path.read_bytes()
        assert not [s for s in secrets if s in data], f"a lab secret is in {path.name}"
    assert FaultLedger().open_records() == []


def test_kill9_during_a_pause_then_heal_resumes_the_node(lab: Lab, tmp_path: Path) -> None:
    env = {**os.environ, "OPSCONSOLE_LAB_PAUSE_S": "120"}
    stderr = tmp_path / "run.stderr"
    with open(stderr, "w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "opsconsole.cli", "run", "lab-faults.nats-node-pause",
             "--report", str(tmp_path / "out"), "--state-dir", str(lab.dir.root)],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
    victim = psutil.Process(lab.dir.load().procs["nats-3"].pid)

    def diagnosis() -> str:  # what the run and the ledger say, for a failure message
        records = [(r.fault, r.target, r.status, r.note) for r in FaultLedger().records().values()]
        return f"run stderr: {stderr.read_text()[-1500:]!r}; ledger: {records}"

    try:
        # Generous: the run first checks the lab and the steady state (probes warm up).
        wait_until(lambda: any(r.fault == "process.pause" and r.status == "active"
                               for r in FaultLedger().open_records()) or proc.poll() is not None,
                   240, "the run to pause nats-3")
        assert proc.poll() is None, f"the run ended before pausing: {diagnosis()}"
        assert victim.status() == psutil.STATUS_STOPPED, diagnosis()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert victim.status() == psutil.STATUS_STOPPED, diagnosis()  # the run died: nobody healed
    healed = run_cli("heal", "--state-dir", str(lab.dir.root))
    assert healed.returncode == 0, healed.stdout + healed.stderr + diagnosis()
    assert "process.pause on nats-3" in healed.stdout, healed.stdout + diagnosis()
    assert victim.status() != psutil.STATUS_STOPPED, diagnosis()
    assert FaultLedger().open_records() == [], diagnosis()
    again = run_cli("heal", "--state-dir", str(lab.dir.root))
    assert again.returncode == 0 and "no open faults" in again.stdout, again.stdout
