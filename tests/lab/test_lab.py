"""The embedded lab is a real, correctly wired topology."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import aioboto3
import hvac
import nats

from opsconsole.lab import Lab
from opsconsole.lab.nats_topology import inbox_prefix

from ..helpers import async_wait_until, run_cli


def test_every_node_healthy_and_routes_up(lab_status: dict) -> None:
    assert lab_status["healthy"], lab_status
    assert [n["name"] for n in lab_status["nats"]] == ["nats-1", "nats-2", "nats-3"]
    assert all(n["routes"] == 2 for n in lab_status["nats"]), lab_status["nats"]
    central = {n["name"] for n in lab_status["nats"]}
    for leaf in lab_status["leaves"]:
        assert leaf["healthy"] and leaf["hub"] in central, leaf


async def _collect(nc: nats.NATS, subject: str) -> list[str]:
    got: list[str] = []

    async def on_msg(msg) -> None:
        got.append(msg.subject)

    await nc.subscribe(subject, cb=on_msg)
    await nc.flush()
    return got


async def _publish_until_seen(nc: nats.NATS, subject: str, seen: list[str]) -> None:
    """Leaf interest propagates asynchronously: publish until delivery, with a deadline."""

    async def delivered() -> bool:  # the poll interval gives delivery its time
        await nc.publish(subject, b"probe")
        await nc.flush()
        return subject in seen

    await async_wait_until(delivered, 10, f"{subject} to be delivered")


async def test_messages_cross_central_to_leaf_and_back(lab: Lab, lab_status: dict) -> None:
    central = await nats.connect(lab_status["nats"][0]["client_url"], **lab.nats_connect_options())
    leaf = await nats.connect(lab_status["leaves"][0]["client_url"], **lab.nats_connect_options(),
                              inbox_prefix=inbox_prefix("u1"))
    try:
        on_leaf = await _collect(leaf, "OwnerSpace.u1.forVault")
        on_central = await _collect(central, "OwnerSpace.u1.forApp")
        await _publish_until_seen(central, "OwnerSpace.u1.forVault", on_leaf)
        await _publish_until_seen(leaf, "OwnerSpace.u1.forApp", on_central)

        # Request/reply across the leaf link works with the user's inbox prefix.
        async def respond(msg) -> None:
            await msg.respond(b"pong")

        await leaf.subscribe("OwnerSpace.u1.echo", cb=respond)
        await leaf.flush()
        requester = await nats.connect(lab_status["nats"][1]["client_url"],
                                       **lab.nats_connect_options(),
                                       inbox_prefix=inbox_prefix("u1"))
        try:
            async def answered() -> bool:
                try:
                    reply = await requester.request("OwnerSpace.u1.echo", b"ping", timeout=0.5)
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    return False
                return reply.data == b"pong"

            await async_wait_until(answered, 10, "request/reply through leaf u1")
        finally:
            await requester.close()
    finally:
        await central.close()
        await leaf.close()


async def test_leaf_u1_never_sees_u2_traffic(lab: Lab, lab_status: dict) -> None:
    login = lab.nats_connect_options()
    central = await nats.connect(lab_status["nats"][0]["client_url"], **login)
    leaf_u1 = await nats.connect(lab_status["leaves"][0]["client_url"], **login)
    leaf_u2 = await nats.connect(lab_status["leaves"][1]["client_url"], **login)
    try:
        seen_u1 = await _collect(leaf_u1, "OwnerSpace.>")
        seen_u2 = await _collect(leaf_u2, "OwnerSpace.>")
        seen_central = await _collect(central, "OwnerSpace.>")
        # u2 traffic reaches leaf u2 (so it was really published and routed)...
        await _publish_until_seen(central, "OwnerSpace.u2.forVault", seen_u2)
        # ...and once u1's own message arrives, anything for u2 would have arrived before it.
        await _publish_until_seen(central, "OwnerSpace.u1.forVault", seen_u1)
        assert not [s for s in seen_u1 if s.startswith("OwnerSpace.u2.")], seen_u1

        # Leaf u1 cannot inject into u2's space on central either.
        for _ in range(5):
            await leaf_u1.publish("OwnerSpace.u2.forApp", b"spoof")
        await _publish_until_seen(leaf_u1, "OwnerSpace.u1.forApp", seen_central)
        assert "OwnerSpace.u2.forApp" not in seen_central
    finally:
        for nc in (central, leaf_u1, leaf_u2):
            await nc.close()


def test_vault_three_voters_one_leader(lab_status: dict) -> None:
    vault = lab_status["vault"]
    assert len(vault) == 3
    assert all(v["voter"] and v["sealed"] is False for v in vault), vault
    assert sum(v["leader"] for v in vault) == 1, vault


def test_bao_cli_agrees_with_status(lab: Lab, lab_status: dict) -> None:
    """`eval "$(opsconsole lab env)"; bao operator raft list-peers` shows the same leader."""
    env_out = run_cli("lab", "env", "--state-dir", str(lab.dir.root))
    assert env_out.returncode == 0, env_out.stderr
    script = f'{env_out.stdout}\nbao operator raft list-peers -format=json'
    bin_dir = os.path.dirname(sys.executable)
    proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"})
    assert proc.returncode == 0, proc.stderr
    servers = json.loads(proc.stdout)["data"]["config"]["servers"]
    assert sum(s["voter"] for s in servers) == 3
    cli_leader = [s["node_id"] for s in servers if s["leader"]]
    status_leader = [v["name"] for v in lab_status["vault"] if v["leader"]]
    assert cli_leader == status_leader


def test_hvac_write_then_read(lab: Lab) -> None:
    env = lab.env()
    client = hvac.Client(url=env["VAULT_ADDR"], token=env["VAULT_TOKEN"],
                         verify=env.get("VAULT_CACERT", True))
    client.secrets.kv.v2.create_or_update_secret(path="opsconsole/test", secret={"k": "v1"})
    read = client.secrets.kv.v2.read_secret_version(path="opsconsole/test",
                                                    raise_on_deleted_version=True)
    assert read["data"]["data"] == {"k": "v1"}


async def test_ec2_runs_an_arm64_instance(lab: Lab) -> None:
    env = lab.env()
    session = aioboto3.Session(aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                               aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
                               region_name=env["AWS_DEFAULT_REGION"])
    async with session.client("ec2", endpoint_url=env["AWS_ENDPOINT_URL"]) as ec2:
        images = await ec2.describe_images(
            Filters=[{"Name": "architecture", "Values": ["arm64"]}])
        ami = images["Images"][0]["ImageId"]
        run = await ec2.run_instances(ImageId=ami, InstanceType="t4g.nano",
                                      MinCount=1, MaxCount=1)
        instance_id = run["Instances"][0]["InstanceId"]
        desc = await ec2.describe_instances(InstanceIds=[instance_id])
        inst = desc["Reservations"][0]["Instances"][0]
        assert inst["Architecture"] == "arm64"
        assert inst["InstanceType"] == "t4g.nano"
        await ec2.terminate_instances(InstanceIds=[instance_id])


def test_status_json_has_required_fields_and_no_secrets(lab: Lab) -> None:
    out = run_cli("lab", "status", "--json", "--state-dir", str(lab.dir.root))
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    for key in ("nats", "leaves", "vault", "aws", "state_dir", "pids"):
        assert key in status
    assert set(status["nats"][0]) >= {"name", "client_url", "monitor_url", "healthy"}
    assert set(status["leaves"][0]) >= {"name", "user", "client_url", "monitor_url",
                                        "healthy", "hub"}
    assert set(status["vault"][0]) >= {"name", "api_addr", "sealed", "leader", "voter"}
    assert set(status["aws"]) >= {"endpoint_url", "region"}
    secrets_dir = lab.dir.secrets
    for secret_file in secrets_dir.iterdir():
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600, secret_file
        assert secret_file.read_bytes().strip().decode(errors="ignore") not in out.stdout
    assert stat.S_IMODE(secrets_dir.stat().st_mode) == 0o700


def test_lab_env_exports(lab: Lab) -> None:
    out = run_cli("lab", "env", "--state-dir", str(lab.dir.root))
    assert out.returncode == 0
    names = {line.split("=", 1)[0].removeprefix("export ") for line in out.stdout.splitlines()}
    assert {"NATS_URL", "VAULT_ADDR", "VAULT_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION",
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= names


def test_lab_up_is_idempotent(lab: Lab, lab_status: dict) -> None:
    out = run_cli("lab", "up", "--json", "--state-dir", str(lab.dir.root))
    assert out.returncode == 0, out.stderr
    again = json.loads(out.stdout)
    assert again["pids"] == lab_status["pids"]  # nothing restarted
    assert again["healthy"]


def test_config_check_cli(tmp_path) -> None:
    good = run_cli("config", "check", "config/lab.toml")
    assert good.returncode == 0 and "OK" in good.stdout
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[vault]\ntoken = "s.hunter2"\n[[vault.nodes]]\n'
                   'name = "v1"\napi_addr = "ftp://x"\n')
    out = run_cli("config", "check", str(bad))
    assert out.returncode == 1
    lines = out.stdout.strip().splitlines()
    assert any("vault.token" in ln and str(bad) in ln for ln in lines), lines
    assert any("vault.nodes[0].api_addr" in ln for ln in lines), lines
    assert "hunter2" not in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
