"""`opsconsole run vault-instance` on the lab: every contract check, 0 failures."""

from __future__ import annotations

import json

import pytest
from junitparser import JUnitXml

from opsconsole.lab import Lab
from opsconsole.systems.vault_instances.packs.vault_instance import CONFORMS, RELAY_LOSS_CHECK

from ..helpers import run_cli

GROUPS = {"provision": 12, "initialize": 11, "health": 11, "stop": 5, "terminate": 6,
          "lifecycle": 5, "relay": 6, "manager": 12}


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
        assert len(names) == GROUPS[group] and all(n.startswith(f"{group}: ") for n in names)
        assert all(c["status"] == "pass" for c in r["checks"]), r["checks"]
    xml = JUnitXml.fromfile(str(report / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    assert len(cases) == sum(GROUPS.values()) + len(GROUPS)  # every check, every verdict
    assert xml.failures == 0 and xml.errors == 0 and xml.skipped == 0

    relay = next(r for r in results if r["id"] == "vault-instance.relay")
    measured = next(c for c in relay["checks"] if c["name"] == RELAY_LOSS_CHECK)
    evidence = measured["evidence"]
    for direction in ("c2l", "l2c"):
        counts = evidence[direction]
        assert counts["sent"] == counts["delivered"] + counts["lost"]  # all settled
        assert counts["lost_outside_window"] == 0
        assert counts["lost_in_window"] <= evidence["max_lost"]
        assert relay["metrics"][f"relay_{direction}_lost"] == counts["lost"]
    assert relay["metrics"]["reconnect_seconds"] == pytest.approx(evidence["reconnect_s"],
                                                                  abs=1e-3)
    assert relay["metrics"]["reconnect_seconds"] < 30
    transcript = json.loads((report / "transcript.json").read_text())
    assert "vault-alice" in transcript["canary"]  # the loss is in the signed report too
    assert run_cli("verify", str(report / "transcript.json")).returncode == 0


def _external_config(lab: Lab, path) -> None:
    """The lab's services described the way a real deployment is: no [lab] section."""
    topo = lab.topology()
    assert topo is not None
    sec = lab.dir.secrets
    lines = ['name = "external"', "[[nats]]", 'name = "central"']
    if lab.ca_cert is not None:  # the secured lab: its CA and the console's login
        from opsconsole.lab.supervisor import CONSOLE_PASSWORD_FILE

        lines += ['user = "console"', f'password_file = "{sec / CONSOLE_PASSWORD_FILE}"',
                  f'ca_cert = "{lab.ca_cert}"']
    for n in topo.central:
        lines += ["[[nats.nodes]]", f'name = "{n.name}"', f'client_url = "{n.client_url}"',
                  f'monitor_url = "{n.monitor_url}"']
    lines += ["[aws]", 'region = "us-east-1"', f'endpoint_url = "{topo.moto_url}"',
              "[provisioner]", f'base_url = "{topo.provisioner_url}"',
              f'admin_token_file = "{sec / "provisioning-admin-token"}"',
              f'member_tokens_file = "{sec / "provisioning-tokens.json"}"',
              f'control_key_file = "{sec / "control-key.pem"}"',
              f'member_nats_passwords_file = "{sec / "nats-member-passwords.json"}"',
              'member = "bob"',
              # the reference's optional capabilities, declared as a deployment would
              'local_nats_url = "{tag:opsconsole:local-nats-url}"',
              'local_monitor_url = "{tag:opsconsole:local-monitor-url}"',
              f'accounts_url = "{topo.provisioner_url}/admin/accounts/{{member}}"',
              'restart_path = "/vault/start"']
    path.write_text("\n".join(lines) + "\n")


def test_pack_runs_against_a_deployment_described_only_by_config(lab: Lab, tmp_path) -> None:
    config = tmp_path / "external.toml"
    _external_config(lab, config)
    aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    for scenario in ("vault-instance.lifecycle", "vault-instance.terminate"):
        out = run_cli("run", scenario, "--config", str(config), "--json",
                      "--report", str(tmp_path / scenario), env=aws, timeout=300)
        assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-3000:]
        [result] = json.loads(out.stdout)
        assert all(c["status"] == "pass" for c in result["checks"]), result["checks"]

    # Without the lab or an SSH host allowed to stop the hub, the hub-loss checks say
    # why they could not run (unknown), and so does the loss bound: no switch to measure.
    # Unknown is not a failure (exit 0, the run says UNKNOWN checks), unless --strict.
    out = run_cli("run", "vault-instance.relay", "--config", str(config), "--json",
                  "--report", str(tmp_path / "relay"), env=aws, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "3 unknown" in out.stderr and "  unknown: " not in out.stderr  # it passed
    strict = run_cli("run", "vault-instance.relay", "--config", str(config), "--strict",
                     "--report", str(tmp_path / "relay-strict"), env=aws, timeout=300)
    assert strict.returncode == 1, strict.stderr[-2000:]
    assert "  unknown: vault-instance.relay: check 'relay: central disconnection handled" \
        in strict.stderr
    [relay] = json.loads(out.stdout)
    status = {c["name"]: c for c in relay["checks"]}
    for name in ("relay: central disconnection handled (leaf moves hub)",
                 "relay: automatic reconnect after a network fault", RELAY_LOSS_CHECK):
        assert status[name]["status"] == "unknown", status[name]
        assert "no way to stop central node" in status[name]["evidence"]["reason"]
    for direction in ("c2l", "l2c"):  # measured all the same, and nothing lost
        assert status[RELAY_LOSS_CHECK]["evidence"][direction]["lost"] == 0
    passed = [n for n, c in status.items() if c["status"] == "pass"]
    assert set(passed) == {"relay: central → local", "relay: local → central",
                           f"relay: {CONFORMS}"}
