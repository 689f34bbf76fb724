"""Read-only runs of the vault-instance and sessions (previews) packs change nothing on the lab.

The lab is snapshotted before and after, from the systems themselves, not from opsconsole:
EC2 instances and security groups in moto, the NATS member accounts the provisioner reads
(the lab's account table), the edit service's ECS desired count and the sessions table in
DynamoDB, and every KV secret's version in OpenBao. Each read-only run is ``unknown`` with
a ``read-only`` reason naming what it would have changed; `vault-ha.metrics-alerts`, which
observes before it seals, runs its reads and is stopped at the seal. The negative control makes real
changes the same snapshot must see (a provisioned instance, a session, a KV write, a
revoked account), so "equal" above means something.
"""

from __future__ import annotations

import asyncio
import json
import ssl
import urllib.request
from typing import Any

import boto3
from junitparser import JUnitXml

from opsconsole.lab import Lab
from opsconsole.lab.supervisor import MEMBER_ACCOUNTS_FILE
from opsconsole.scenarios import resolve

from ..helpers import run_cli, wait_until

SESSIONS_PREFIX = "opsconsole-sessions"  # the lab stack's AWS resource names


def _aws(lab: Lab, service: str) -> Any:
    env = lab.env()
    return boto3.client(service, endpoint_url=env["AWS_ENDPOINT_URL"],
                        region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def _vault(lab: Lab, method: str, path: str, body: dict | None = None) -> dict[str, Any]:
    env = lab.env()
    req = urllib.request.Request(f"{env['VAULT_ADDR']}/v1/{path}", method=method,
                                 headers={"X-Vault-Token": env["VAULT_TOKEN"]},
                                 data=json.dumps(body).encode() if body else None)
    try:
        ca = env.get("VAULT_CACERT")
        ctx = ssl.create_default_context(cafile=ca) if ca else None
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            return json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        if exc.code == 404:
            return {}
        raise


def _kv_versions(lab: Lab, prefix: str = "") -> dict[str, int]:
    """Every KV v2 secret under ``secret/`` and its current version (a write bumps it)."""
    out: dict[str, int] = {}
    for key in _vault(lab, "LIST", f"secret/metadata/{prefix}").get("data", {}).get("keys", []):
        if key.endswith("/"):
            out |= _kv_versions(lab, prefix + key)
        else:
            meta = _vault(lab, "GET", f"secret/metadata/{prefix}{key}").get("data", {})
            out[prefix + key] = meta.get("current_version")
    return out


def snapshot(lab: Lab) -> dict[str, Any]:
    """What a mutating step of these packs would change, read from the systems."""
    ec2 = _aws(lab, "ec2")
    instances = sorted((i["InstanceId"], i["State"]["Name"])
                       for r in ec2.describe_instances()["Reservations"] for i in r["Instances"])
    groups = sorted(g["GroupId"] for g in ec2.describe_security_groups()["SecurityGroups"])
    services = _aws(lab, "ecs").describe_services(cluster=SESSIONS_PREFIX,
                                                  services=["edit"])["services"]
    ddb = _aws(lab, "dynamodb")
    table = f"{SESSIONS_PREFIX}-sessions"
    keys = [k["AttributeName"] for k in ddb.describe_table(TableName=table)["Table"]["KeySchema"]]
    items = sorted(json.dumps({k: item.get(k) for k in [*keys, "status"]}, sort_keys=True)
                   for item in ddb.scan(TableName=table)["Items"])
    return {"ec2_instances": instances, "security_groups": groups,
            "nats_accounts": json.loads((lab.dir.secrets / MEMBER_ACCOUNTS_FILE).read_text()),
            "ecs_desired": {s["serviceName"]: s["desiredCount"] for s in services},
            "sessions_items": items, "kv": _kv_versions(lab)}


def _quiet(lab: Lab) -> None:
    """Until the sessions stack runs nothing (an earlier test's session may still expire:
    that change is not ours)."""
    url = f"{lab.topology().sessions_url}/api/status"

    def idle() -> bool:
        with urllib.request.urlopen(url, timeout=5) as r:
            counts = json.loads(r.read())["counts"]
        busy = {k: v for k, v in counts["sessions"].items() if k in ("active", "starting")}
        return counts["running"] == 0 and not any(busy.values())

    wait_until(idle, lab.spec.sessions_idle_timeout_s + 90, "the sessions stack to be idle",
               interval=0.5)


def _read_only_config(tmp_path) -> str:
    """The lab's config with ``read_only = true`` (the inventory key, not the flag)."""
    path = tmp_path / "read-only.toml"
    path.write_text('name = "lab"\nread_only = true\n\n[lab]\n')
    return str(path)


def test_read_only_runs_of_vault_instance_and_sessions_change_nothing(lab: Lab,
                                                                       tmp_path) -> None:
    _quiet(lab)
    before = snapshot(lab)
    runs = {"vault-instance": ["--read-only"],  # the flag, after the command
            "sessions": ["--config", _read_only_config(tmp_path)]}  # the inventory key
    for pack, how in runs.items():
        report = tmp_path / pack
        out = run_cli("run", pack, *how, "--json", "--report", str(report),
                      "--state-dir", str(lab.dir.root), timeout=300)
        # unknown, as every unknown run: exit 0, "UNKNOWN" on the verdict line
        assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
        assert ": UNKNOWN ·" in out.stderr, out.stderr[-2000:]
        results = json.loads(out.stdout)
        expected = {s.id: s.mutates for s in resolve(pack)}
        assert [r["id"] for r in results] == list(expected)
        for r in results:
            assert r["status"] == "unknown", r
            assert r["reason"].startswith("read-only: refused up front, it would "), r
            [check] = r["checks"]  # nothing but the refusal ran
            assert check["status"] == "unknown" and check["phase"] == "read-only"
            assert check["evidence"]["would_change"] == list(expected[r["id"]])
            assert all(what in r["reason"] for what in expected[r["id"]])
        transcript = json.loads((report / "transcript.json").read_text())
        assert transcript["status"] == "unknown"
        assert transcript["faults"]["injected"] == 0
        xml = JUnitXml.fromfile(str(report / "junit.xml"))
        assert xml.failures == 0 and xml.errors == 0 and xml.skipped == 2 * len(expected)
        assert "read-only: refused up front" in (report / "report.md").read_text()
    # a scenario that observes first: its reads run, the seal is refused, nothing sealed
    out = run_cli("--read-only", "run", "vault-ha.metrics-alerts", "--json", "--report",
                  str(tmp_path / "alerts"), "--state-dir", str(lab.dir.root), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    [alerts] = json.loads(out.stdout)
    assert alerts["status"] == "unknown", alerts
    assert alerts["reason"].startswith("read-only: would inject the fault vault.seal on ")
    statuses = [(c["name"], c["status"]) for c in alerts["checks"]]
    assert ("every node serves Prometheus metrics", "pass") in statuses
    assert statuses[-1] == ("refused (read-only): inject the fault vault.seal", "unknown")
    assert not any(n["sealed"] for n in asyncio.run(lab.status())["vault"])
    strict = run_cli("run", "vault-instance.provision", "--read-only", "--strict",
                     "--report", str(tmp_path / "strict"), "--state-dir", str(lab.dir.root),
                     timeout=300)
    assert strict.returncode == 1, strict.stderr[-2000:]  # an unknown never passes CI
    after = snapshot(lab)
    assert after == before


def test_the_snapshot_sees_the_changes_a_mutating_run_makes(lab: Lab, tmp_path) -> None:
    """The negative control: real changes, each seen by the same snapshot."""
    _quiet(lab)
    before = snapshot(lab)
    out = run_cli("run", "vault-instance.provision", "--json", "--report",
                  str(tmp_path / "provision"), "--state-dir", str(lab.dir.root), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    out = run_cli("run", "sessions.routing", "--json", "--report", str(tmp_path / "routing"),
                  "--state-dir", str(lab.dir.root), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    _vault(lab, "POST", "secret/data/opsconsole/read-only-control", {"data": {"v": "x"}})
    asyncio.run(lab.set_member_account("carol", False))
    try:
        after = snapshot(lab)
    finally:
        asyncio.run(lab.set_member_account("carol", True))
    assert len(after["ec2_instances"]) > len(before["ec2_instances"])  # provisioned
    assert after["sessions_items"] != before["sessions_items"]  # a session was created
    assert after["kv"] != before["kv"]
    assert after["nats_accounts"]["carol"]["active"] is False
    assert before["nats_accounts"]["carol"]["active"] is True
