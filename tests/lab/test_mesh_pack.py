"""The `mesh` pack on the lab: every scenario through the engine, one testcase per check."""

from __future__ import annotations

import json

from junitparser import JUnitXml

from opsconsole.lab import Lab
from opsconsole.systems.mesh.checks import SCALE_TARGETS

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


def test_mesh_scale_at_100_agents_x_10_msgs_reports_verdicts_that_match_its_figures(
        lab: Lab, tmp_path) -> None:
    """The run's bookkeeping, not this host's speed (the targets are benchmarked in
    `make bench`): every agent started and converged, every worker reported, and each
    target's verdict agrees with the figure it was computed from, as does the exit code."""
    out = run_cli("run", "mesh.scale", "--agents", "100", "--rate", "10", "--duration", "10",
                  "--workers", "2", "--json", "--report", str(tmp_path / "out"),
                  "--state-dir", str(lab.dir.root), timeout=300)
    assert out.returncode in (0, 1), out.stderr[-2000:] + out.stdout[-3000:]
    [scale] = json.loads(out.stdout)
    m = scale["metrics"]
    assert m["agents"] == 100 and m["workers"] == 2 and m["connection_success_rate"] == 1
    assert m["p50_ms"] <= m["p95_ms"] <= m["p99_ms"]
    by_name = {c["name"]: c["status"] for c in scale["checks"]}
    assert by_name["scale: every worker registered and every agent started"] == "pass"
    assert by_name["scale: every worker ran the load and reported it"] == "pass"
    for name, (op, limit) in SCALE_TARGETS.items():
        meets = m[name] < limit if op == "<" else m[name] > limit
        assert by_name[f"scale: {name} {op} {limit:g}"] == ("pass" if meets else "fail"), (
            name, m[name])
    expected = "pass" if set(by_name.values()) == {"pass"} else "fail"
    assert scale["status"] == expected
    assert out.returncode == (0 if expected == "pass" else 1)
    journal = (tmp_path / "out" / "journal.jsonl").read_text()
    assert '"kind":"load.report"' in journal and '"unit":"msg/s"' in journal  # live pane
