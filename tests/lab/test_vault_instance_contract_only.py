"""The vault-instance pack against a second reference provisioner in contract-only mode
(only seed 000's five endpoints; the inventory declares no optional capability): no
`fail`, the optional checks `unknown` with their reasons, the contract checks `pass`; and
a wrong field type (the ``--wrong-type`` test double) fails the contract check naming it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import aiohttp

from opsconsole.lab import Lab
from opsconsole.lab.ports import free_ports
from opsconsole.systems.vault_instances.packs.vault_instance import CONFORMS, SCENARIOS

from ..helpers import run_cli, stop_process, wait_until

MEMBER = "bob"  # not the lab inventory's member: the main pack's instance is alice's
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
#: check -> the word its unknown reason must name (the capability, or why)
OPTIONAL = {
    "provision: exceeding the time limit fails (and leaves no instance running)":
        "slow_member",
    "initialize: local NATS started": "local_nats_url",
    "initialize: central connected": "local_nats_url",
    "stop: state preserved for restart": "restart_path",
    "lifecycle: recovery from initialization failure": "accounts_url",
    "lifecycle: restart after stop": "restart_path",
    "relay: central → local": "local_nats_url",
    "health: degraded while the central link is cut": "not the lab",
}


@contextlib.contextmanager
def _contract_only(lab: Lab, tmp_path: Path, *flags: str) -> Iterator[str]:
    """A second reference provisioner with the lab's wiring, its own port and state,
    ``--contract-only`` and ``flags``; yields its base URL; stopped at the end."""
    topo = lab.topology()
    assert topo is not None
    argv = list(lab.commands(topo)["provisioner"][1])
    [port] = free_ports(1)
    argv[argv.index("--port") + 1] = str(port)
    argv[argv.index("--state-dir") + 1] = str(tmp_path / "instances")
    argv = [a for i, a in enumerate(argv) if a != "--slow-member"
            and (i == 0 or argv[i - 1] != "--slow-member")]
    with open(tmp_path / "provisioner.log", "wb") as log:
        proc = subprocess.Popen([*argv, "--contract-only", *flags], stdout=log, stderr=log,
                                stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    async def status(path: str) -> int:
        async with aiohttp.ClientSession() as http, http.get(url + path) as r:
            return r.status

    def up() -> bool:
        assert proc.poll() is None, (tmp_path / "provisioner.log").read_text()[-2000:]
        with contextlib.suppress(aiohttp.ClientError, OSError):
            return asyncio.run(status("/healthz")) == 200
        return False

    try:
        wait_until(up, 30, "the contract-only provisioner to answer", 0.1)
        for path in ("/vault/status", "/admin/instances"):  # the reference API is off
            assert asyncio.run(status(path)) == 404, path
        yield url
    finally:
        stop_process(proc, 20)
        asyncio.run(lab.set_member_account(MEMBER, True))


def _seed_only_config(lab: Lab, path: Path, url: str) -> None:
    """A deployment described the way seed 000 describes one: central NATS, AWS and the
    provisioner's five endpoints, no optional capability."""
    from opsconsole.lab.supervisor import CONSOLE_PASSWORD_FILE

    topo = lab.topology()
    assert topo is not None
    sec = lab.dir.secrets
    lines = ['name = "seed-only"', "[[nats]]", 'name = "central"']
    if lab.ca_cert is not None:
        lines += ['user = "console"', f'password_file = "{sec / CONSOLE_PASSWORD_FILE}"',
                  f'ca_cert = "{lab.ca_cert}"']
    for n in topo.central:
        lines += ["[[nats.nodes]]", f'name = "{n.name}"', f'client_url = "{n.client_url}"',
                  f'monitor_url = "{n.monitor_url}"']
    lines += ["[aws]", f'region = "{lab.spec.aws_region}"', f'endpoint_url = "{topo.moto_url}"',
              "[provisioner]", f'base_url = "{url}"',
              f'member_tokens_file = "{sec / "provisioning-tokens.json"}"',
              f'control_key_file = "{sec / "control-key.pem"}"',
              f'member_nats_passwords_file = "{sec / "nats-member-passwords.json"}"',
              f'member = "{MEMBER}"']
    path.write_text("\n".join(lines) + "\n")


def test_pack_in_contract_only_mode_has_no_fail(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "seed-only.toml"
    checks: dict[str, dict] = {}
    with _contract_only(lab, tmp_path) as url:
        _seed_only_config(lab, config, url)
        for scenario in SCENARIOS:
            # terminate revokes the member's NATS account (the seed), and a seed-only
            # deployment has no way to grant it again: the test is the operator here
            asyncio.run(lab.set_member_account(MEMBER, True))
            out = run_cli("run", scenario.id, "--config", str(config), "--json",
                          "--report", str(tmp_path / scenario.id), env=AWS_ENV, timeout=300)
            assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-3000:]
            [result] = json.loads(out.stdout)
            assert result["status"] in ("pass", "unknown"), result
            checks |= {c["name"]: c for c in result["checks"]}
    assert not [c for c in checks.values() if c["status"] in ("fail", "error")], checks
    for name, why in OPTIONAL.items():
        assert checks[name]["status"] == "unknown", checks[name]
        assert why in checks[name]["evidence"]["reason"], checks[name]
    contract = [c for n, c in checks.items() if n.endswith(CONFORMS)]
    assert len(contract) == len(SCENARIOS)
    assert all(c["status"] == "pass" and c["evidence"]["responses"] > 0 for c in contract)
    for name in ("provision: authenticated member provisioned", "provision: duplicate rejected",
                 "provision: unique security group", "initialize: only after EC2 running",
                 "health: every field typed and plausible", "stop: graceful",
                 "terminate: EC2 terminated", "terminate: NATS credentials revoked",
                 "lifecycle: provision → initialize → health → stop → terminate",
                 "manager: forVault processed"):
        assert checks[name]["status"] == "pass", checks[name]


def test_a_wrong_field_type_fails_the_named_contract_check(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "double.toml"
    with _contract_only(lab, tmp_path, "--wrong-type") as url:
        _seed_only_config(lab, config, url)
        asyncio.run(lab.set_member_account(MEMBER, True))
        out = run_cli("run", "vault-instance.lifecycle", "--config", str(config), "--json",
                      "--report", str(tmp_path / "out"), env=AWS_ENV, timeout=300)
    assert out.returncode == 1, out.stderr[-2000:] + out.stdout[-3000:]
    [result] = json.loads(out.stdout)
    checks = {c["name"]: c for c in result["checks"]}
    failed = {n for n, c in checks.items() if c["status"] == "fail"}
    assert failed == {f"lifecycle: {CONFORMS}"}, failed
    evidence = checks[f"lifecycle: {CONFORMS}"]["evidence"]
    assert all(v.startswith("GET /vault/health → 200: $.uptime_seconds: ")
               for v in evidence["violations"]), evidence
