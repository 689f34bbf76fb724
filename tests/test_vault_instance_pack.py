"""`opsconsole run vault-instance` on the lab: every contract check, 0 failures."""

from __future__ import annotations

import json

from junitparser import JUnitXml

from opsconsole.lab import Lab

from .conftest import run_cli

GROUPS = {"provision": 8, "initialize": 8, "health": 7, "stop": 4, "terminate": 5,
          "lifecycle": 4, "relay": 5, "manager": 11}


def test_vault_instance_pack_passes_with_every_check(lab: Lab, tmp_path) -> None:
    report = tmp_path / "out"
    out = run_cli("run", "vault-instance", "--report", str(report), "--json",
                  "--state-dir", str(lab.dir.root), timeout=600)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-3000:]
    results = json.loads(out.stdout)
    assert [r["id"] for r in results] == [f"vault-instance.{g}" for g in GROUPS]
    for r in results:
        group = r["id"].split(".")[1]
        names = [c["name"] for c in r["checks"]]
        assert len(names) >= GROUPS[group] and all(n.startswith(f"{group}: ") for n in names)
    xml = JUnitXml.fromfile(str(report / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    assert len(cases) >= 45 and xml.failures == 0 and xml.errors == 0

    relay = next(r for r in results if r["id"] == "vault-instance.relay")
    measured = next(c for c in relay["checks"] if c["name"].startswith("relay: messages"))
    for direction in ("c2l", "l2c"):
        counts = measured["evidence"][direction]
        assert counts["sent"] == counts["delivered"] + counts["lost"]  # all settled
    assert relay["metrics"]["reconnect_seconds"] < 30
    transcript = json.loads((report / "transcript.json").read_text())
    assert "vault-alice" in transcript["canary"]  # the loss is in the signed report too
    assert run_cli("verify", str(report / "transcript.json")).returncode == 0
