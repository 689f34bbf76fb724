"""Negative controls on the lab for the vault-instance checks made real (issue 18,
Deliver 3): an inventory whose AMI policy, instance types and architecture the
reference's actual instance violates fails each check naming what; MessageSpace-style
access lets a wider user across (fail) and refuses a narrower one (pass)."""

from __future__ import annotations

import asyncio
import json

from opsconsole.lab import Lab
from opsconsole.lab.supervisor import CONSOLE_PASSWORD_FILE
from opsconsole.systems.vault_instances.checks import (
    space_access,
    space_closed_outcome,
    space_open_outcome,
)

from ..helpers import run_cli
from .test_vault_instance_pack import _external_config

AWS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def test_provision_fails_on_an_image_and_type_the_inventory_does_not_allow(
        lab: Lab, tmp_path) -> None:
    config = tmp_path / "violating.toml"
    _external_config(lab, config)
    config.write_text(config.read_text() + "\n".join([
        'instance_types = ["m7g.large"]', 'architecture = "x86_64"',
        "[provisioner.ami_policy]", 'owners = ["999999999999"]',
        'required_tags = { hardened = "stig" }']) + "\n")
    out = run_cli("run", "vault-instance.provision", "--config", str(config), "--json",
                  "--report", str(tmp_path / "r"), env=AWS, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:]
    [result] = json.loads(out.stdout)
    checks = {c["name"]: c for c in result["checks"]}
    ami = checks["provision: AMI policy (owner, image id, tags)"]
    assert ami["status"] == "fail", ami
    assert ami["evidence"]["violations"] == [
        "owner 123456789012 is not an allowed owner",
        "tag hardened is 'cis-level-1', not 'stig'"]
    kind = checks["provision: instance type allowed"]
    assert kind["status"] == "fail" and "t4g.nano" in kind["evidence"]["reason"]
    arch = checks["provision: architecture"]
    assert arch["status"] == "fail" and "image architecture is arm64" in \
        arch["evidence"]["reason"]
    failed = {n for n, c in checks.items() if c["status"] == "fail"}
    assert failed == {"provision: AMI policy (owner, image id, tags)",
                      "provision: instance type allowed", "provision: architecture"}

    silent = tmp_path / "silent.toml"  # no policy, no types: unknown, never a pass
    _external_config(lab, silent)
    out = run_cli("run", "vault-instance.provision", "--config", str(silent), "--json",
                  "--report", str(tmp_path / "s"), env=AWS, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    checks = {c["name"]: c for c in json.loads(out.stdout)[0]["checks"]}
    for name in ("provision: AMI policy (owner, image id, tags)",
                 "provision: instance type allowed"):
        assert checks[name]["status"] == "unknown" and "declares no" in \
            checks[name]["evidence"]["reason"]


def test_space_access_lets_a_wider_user_across_and_refuses_a_narrower_one(lab: Lab) -> None:
    """The same observation the pack makes, on the lab's leaf of u1 (its link is bound to
    u1): u1 crosses under OwnerSpace.u1 (positive control); the console, allowed
    ``OwnerSpace.>``, gets across too — the check fails; u2 is refused — it passes."""
    topo = lab.topology()
    assert topo is not None
    central = lab.nats_cluster(topo)
    hub = central.endpoint(central.nodes[0])
    leaf = next(lf for lf in topo.leaves if lf.user == "u1")
    local = lab.leaf_node(leaf).endpoint()
    prefix = "OwnerSpace.u1.space-test"

    def password(name: str) -> str:
        return lab.dir.read_secret(name) or ""

    async def observe():
        member = await space_access(hub, local, prefix, "u1",
                                    password("nats-leaf-u1.password"))
        wider = await space_access(hub, local, prefix, "console",
                                   password(CONSOLE_PASSWORD_FILE), timeout=3)
        narrower = await space_access(hub, local, prefix, "u2",
                                      password("nats-leaf-u2.password"), timeout=3)
        return member, wider, narrower

    member, wider, narrower = asyncio.run(observe())
    assert space_open_outcome(prefix, member)[0] == "pass", member
    status, evidence = space_closed_outcome(prefix, member, wider)
    assert status == "fail" and "console published into the instance" in evidence["reason"]
    status, evidence = space_closed_outcome(prefix, member, narrower)
    assert status == "pass" and evidence["refused"] is True, evidence
    assert all("Permissions Violation" in v or "permissions violation" in v
               for v in narrower.violations)
