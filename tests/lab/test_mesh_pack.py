"""The `mesh` pack on the lab: every scenario through the engine, one testcase per check."""

from __future__ import annotations

import json

from junitparser import JUnitXml

from opsconsole.lab import Lab

from ..helpers import run_cli

FUNCTIONAL = ["mesh.convergence", "mesh.partition", "mesh.presence", "mesh.rendezvous",
              "mesh.security"]


def test_mesh_functional_scenarios_pass_on_the_lab(lab: Lab, tmp_path) -> None:
    report = tmp_path / "out"
    results = []
    for sid in FUNCTIONAL:
        out = run_cli("run", sid, "--report", str(report / sid), "--json",
                      "--state-dir", str(lab.dir.root), timeout=300)
        assert out.returncode == 0, sid + out.stderr[-2000:] + out.stdout[-3000:]
        results += json.loads(out.stdout)
        xml = JUnitXml.fromfile(str(report / sid / "junit.xml"))
        assert xml.failures == 0 and xml.errors == 0
    by_id = {r["id"]: r for r in results}
    assert by_id["mesh.convergence"]["metrics"]["convergence_seconds"] < 10
    assert by_id["mesh.partition"]["metrics"]["convergence_seconds"] < 30
    transcript = json.loads((report / "mesh.partition" / "transcript.json").read_text())
    faults = transcript["scenarios"][0]["faults"]
    assert [f["fault"] for f in faults] == ["link.cut"] and faults[0]["healed_at"]
    names = [c["name"] for r in results for c in r["checks"] if c["phase"] == "method"]
    for expected in ("partition: each side works alone during a real route cut",
                     "presence: TTL=1 reaches neighbours only",
                     "rendezvous: coordinator failover to the backup",
                     "security: key substitution detected",
                     "security: a replayed message is ignored"):
        assert expected in names, expected


def test_mesh_scale_meets_the_targets_at_100_agents_x_10_msgs(lab: Lab, tmp_path) -> None:
    out = run_cli("run", "mesh.scale", "--agents", "100", "--rate", "10", "--duration", "10",
                  "--workers", "2", "--json", "--report", str(tmp_path / "out"),
                  "--state-dir", str(lab.dir.root), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-3000:]
    [scale] = json.loads(out.stdout)
    m = scale["metrics"]
    assert m["agents"] == 100 and m["workers"] == 2 and m["connection_success_rate"] == 1
    assert m["p95_ms"] < 500 and m["throughput_msgs"] > 500
    assert m["mem_mb_per_agent"] < 50 and m["bandwidth_kbps_per_agent"] < 100
    assert m["convergence_seconds"] < 30
    assert m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"]
    journal = (tmp_path / "out" / "journal.jsonl").read_text()
    assert '"kind":"load.report"' in journal and '"unit":"msg/s"' in journal  # live pane
