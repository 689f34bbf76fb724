"""The reference provisioning service on the lab: the vault-instance contract, for real."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aioboto3
import aiohttp
import nats
import psutil
import pytest

from opsconsole.lab import Lab
from opsconsole.lab.supervisor import DUMMY_AWS_KEY

from ...helpers import async_wait_until


@pytest.fixture
async def api(lab: Lab):
    tokens = json.loads(lab.dir.read_secret("provisioning-tokens.json"))
    base = lab.topology().provisioner_url
    async with aiohttp.ClientSession() as http:
        async def call(method: str, path: str, member: str = "bob", token: str | None = None):
            headers = {"Authorization": f"Bearer {token or tokens[member]}"}
            async with http.request(method, base + path, headers=headers) as r:
                return r.status, await r.json()

        yield call
    await lab.set_member_account("bob", True)  # re-grant: terminate revokes it


async def _ec2(lab: Lab, instance_id: str) -> dict:
    session = aioboto3.Session(aws_access_key_id=DUMMY_AWS_KEY,
                               aws_secret_access_key=DUMMY_AWS_KEY,
                               region_name=lab.spec.aws_region)
    async with session.client("ec2", endpoint_url=lab.topology().moto_url) as ec2:
        inst = (await ec2.describe_instances(InstanceIds=[instance_id]))["Reservations"][0][
            "Instances"][0]
        image = (await ec2.describe_images(ImageIds=[inst["ImageId"]]))["Images"][0]
        groups = (await ec2.describe_security_groups())["SecurityGroups"]
    return {"instance": inst, "image": image, "groups": {g["GroupId"] for g in groups}}


async def test_vault_instance_lifecycle(lab: Lab, api) -> None:
    assert (await api("POST", "/vault/provision", token="not-a-token"))[0] == 401
    status, body = await api("POST", "/vault/provision", member="dave")
    assert status == 403 and "NATS account" in body["error"]

    status, prov = await api("POST", "/vault/provision")
    assert status == 202 and prov["status"] == "provisioning" and prov["instance_id"]
    assert {"region", "availability_zone", "estimated_ready_at"} <= set(prov)
    assert (await api("POST", "/vault/provision"))[0] == 409  # one vault per member
    status, early = await api("POST", "/vault/initialize")
    assert status == 409 and "not ready" in early["error"]
    assert (await api("GET", "/vault/health"))[0] == 409  # not initialised yet

    ec2 = await _ec2(lab, prov["instance_id"])
    tags = {t["Key"]: t["Value"] for t in ec2["instance"]["Tags"]}
    assert ec2["image"]["Architecture"] == "arm64" and "hardened" in ec2["image"]["Name"]
    assert tags["owner"] == "bob" and tags["role"] == "vault-instance"
    assert [g["GroupId"] for g in ec2["instance"]["SecurityGroups"]] == [prov["security_group"]]

    async def running() -> bool:
        return (await api("GET", "/vault/status"))[1]["status"] == "running"

    await async_wait_until(running, 15, "the modelled pending phase to end")
    status, init = await api("POST", "/vault/initialize")
    assert status == 200, init
    assert init["status"] == "initialized" and init["owner_space_id"] == "OwnerSpace.bob"
    assert init["message_space_id"].startswith("MessageSpace.bob.")
    assert (init["local_nats_status"], init["central_nats_status"]) == ("running", "connected")

    status, health = await api("GET", "/vault/health")
    assert status == 200 and health["status"] == "healthy"
    assert health["vault_manager"]["handlers_loaded"] >= 5
    assert health["central_nats"]["status"] == "connected"

    central = lab.topology().central[0].client_url
    nc = await nats.connect(central, **lab.nats_connect_options(), inbox_prefix="_INBOX_bob")
    try:
        async def answered() -> bool:
            try:
                reply = await nc.request("OwnerSpace.bob.forVault", json.dumps(
                    {"id": "k1", "type": "kv.put", "payload": {"key": "a", "value": 1}}
                ).encode(), timeout=0.5)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                return False
            return json.loads(reply.data)["ok"]

        await async_wait_until(answered, 15, "the instance's manager to answer via central")
    finally:
        await nc.close()

    status, stopped = await api("POST", "/vault/stop")
    assert status == 200 and stopped["state_preserved"]
    assert (await api("GET", "/vault/health"))[1]["status"] == "unhealthy"
    assert (await api("POST", "/vault/start"))[0] == 200
    nc = await nats.connect(central, **lab.nats_connect_options(), inbox_prefix="_INBOX_bob")
    try:
        async def kept_state() -> bool:
            try:
                reply = await nc.request("OwnerSpace.bob.forVault", json.dumps(
                    {"id": "k2", "type": "kv.get", "payload": {"key": "a"}}).encode(),
                    timeout=0.5)
            except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                return False
            return json.loads(reply.data).get("result", {}).get("value") == 1

        await async_wait_until(kept_state, 15, "state preserved across stop/start")
    finally:
        await nc.close()

    status, term = await api("POST", "/vault/terminate")
    assert status == 200 and term["status"] == "terminated"
    assert (await api("POST", "/vault/terminate"))[0] == 200  # idempotent
    assert (await api("GET", "/vault/health"))[0] == 404
    after = await _ec2(lab, prov["instance_id"])
    assert after["instance"]["State"]["Name"] == "terminated"
    assert prov["security_group"] not in after["groups"]
    password = lab.dir.read_secret("nats-member-bob.password")
    with pytest.raises(nats.errors.Error):  # credentials revoked on central
        await asyncio.wait_for(nats.connect(
            central, **{**lab.nats_connect_options(), "user": "bob", "password": password},
            max_reconnect_attempts=0, connect_timeout=2, allow_reconnect=False), 10)


async def test_admin_api_grants_and_revokes_accounts_and_refuses_bad_input(lab: Lab) -> None:
    base = lab.topology().provisioner_url
    admin = {"Authorization": f"Bearer {lab.dir.read_secret('provisioning-admin-token')}"}
    tokens = json.loads(lab.dir.read_secret("provisioning-tokens.json"))
    async with aiohttp.ClientSession() as http:
        async def post(path: str, body, headers=admin) -> tuple[int, dict]:
            async with http.post(base + path, json=body, headers=headers) as r:
                return r.status, await r.json()

        member_auth = {"Authorization": f"Bearer {tokens['carol']}"}
        assert (await post("/admin/accounts/carol", {"active": False}, member_auth))[0] == 401
        status, body = await post("/admin/accounts/carol", {"active": "no"})
        assert status == 400 and "true or false" in body["error"]
        assert (await post("/admin/accounts/mallory", {"active": True}))[0] == 404
        assert "carol" not in lab.revoked_members()
        try:
            assert (await post("/admin/accounts/carol", {"active": False}))[0] == 200
            assert "carol" in lab.revoked_members()
            async with http.post(base + "/vault/provision", headers=member_auth) as r:
                assert r.status == 403  # no NATS account, no vault
        finally:
            assert (await post("/admin/accounts/carol", {"active": True}))[0] == 200
        assert "carol" not in lab.revoked_members()


def _waits_for_lock(pid: int, lock: Path) -> bool:
    """True while ``pid`` or one of its children (the account helper the launcher gave it)
    is blocked in flock on ``lock`` (a ``->`` line in /proc/locks)."""
    inode = f":{lock.stat().st_ino} "
    try:
        pids = {str(pid)} | {str(c.pid) for c in psutil.Process(pid).children(recursive=True)}
    except psutil.Error:
        return False
    return any(line.split()[1] == "->" and line.split()[5] in pids
               for line in Path("/proc/locks").read_text().splitlines() if inode in line)


async def test_provisioner_answers_while_a_handler_waits_for_the_lab_lock(lab: Lab) -> None:
    """A handler waiting on the lab's flock (another command holds it) must not stall the
    service: the account change waits in the launcher's helper, off the provisioner's loop."""
    base = lab.topology().provisioner_url
    admin = {"Authorization": f"Bearer {lab.dir.read_secret('provisioning-admin-token')}"}
    pid = lab.process("provisioner").pid
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        async def grant() -> int:  # carol is granted already: re-granting changes nothing
            async with http.post(f"{base}/admin/accounts/carol", json={"active": True},
                                 headers=admin) as r:
                return r.status

        async def healthz_s() -> float:
            began = time.monotonic()
            async with http.get(f"{base}/healthz",
                                timeout=aiohttp.ClientTimeout(total=5)) as r:
                assert r.status == 200
            return time.monotonic() - began

        async with lab.dir.locked():  # as `lab up` or a fault in another process would
            pending = asyncio.create_task(grant())
            await async_wait_until(lambda: _waits_for_lock(pid, lab.dir.root / "lock"), 10,
                                   "the provisioner's handler to wait for the lab lock")
            latencies = [await healthz_s() for _ in range(3)]
            assert not pending.done(), "the handler did not wait for the lock"
        assert await asyncio.wait_for(pending, 30) == 200
    assert max(latencies) < 0.5, f"/healthz stalled while a handler waited: {latencies}"
