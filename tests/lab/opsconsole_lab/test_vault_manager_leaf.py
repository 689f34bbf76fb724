"""The reference Vault Manager run for real on a lab leaf."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys

import aiohttp
import nats
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from opsconsole.lab import Lab
from opsconsole.lab.nats_topology import inbox_prefix
from opsconsole.lab.ports import free_ports

from ...helpers import REPO, async_wait_until, sign_control


def _login(lab: Lab) -> list[str]:
    """The manager's login to a secured lab leaf: the lab CA and the console's password."""
    from opsconsole.lab.supervisor import CONSOLE_PASSWORD_FILE

    if lab.ca_cert is None:
        return []
    return ["--nats-ca", str(lab.ca_cert), "--nats-login",
            f"console:{lab.dir.secrets / CONSOLE_PASSWORD_FILE}"]


async def test_manager_on_a_real_leaf(lab: Lab, lab_status: dict, tmp_path) -> None:
    key = Ed25519PrivateKey.generate()
    pub = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    (tmp_path / "keys.json").write_text(json.dumps({"ops": pub}))
    port = free_ports(1)[0]
    leaf_url = lab_status["leaves"][0]["client_url"]
    proc = subprocess.Popen([sys.executable, "-m", "opsconsole_lab.vault_manager",
                             "--nats", leaf_url, "--user", "u1", "--monitor-port", str(port),
                             *_login(lab),
                             "--state-dir", str(tmp_path / "state"), "--authorized-keys",
                             str(tmp_path / "keys.json"), "--rate", "20", "--burst", "20"],
                            cwd=REPO)
    central = await nats.connect(lab_status["nats"][0]["client_url"],
                                 **lab.nats_connect_options(), inbox_prefix=inbox_prefix("u1"))
    answers: list[dict] = []

    async def on_app(msg) -> None:
        answers.append(json.loads(msg.data))

    await central.subscribe("OwnerSpace.u1.forApp", cb=on_app)
    try:
        async with aiohttp.ClientSession() as http:
            async def healthy() -> bool:
                try:
                    async with http.get(f"http://127.0.0.1:{port}/health") as r:
                        return (await r.json())["status"] == "healthy"
                except aiohttp.ClientError:
                    return False

            await async_wait_until(healthy, 20, "the manager to connect")

            async def answered() -> bool:  # leaf interest propagates asynchronously
                try:
                    reply = await central.request("OwnerSpace.u1.forVault", json.dumps(
                        {"id": "p1", "type": "ping"}).encode(), timeout=0.5)
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    return False
                return json.loads(reply.data)["ok"]

            await async_wait_until(answered, 20, "a ping answered across the relay")
            await central.publish("OwnerSpace.u1.forVault", b"\x00not json")
            for i in range(40):  # burst above the 20/s limit
                await central.publish("OwnerSpace.u1.forVault",
                                      json.dumps({"id": f"b{i}", "type": "echo"}).encode())
            await async_wait_until(lambda: len(answers) >= 42, 10, "every event answered")
            assert any(a["error"] == "malformed: not JSON" for a in answers if not a["ok"])
            assert any(a.get("error") == "rate limited" for a in answers)
            forged = sign_control(Ed25519PrivateKey.generate(), "shutdown", "u1")
            bad = await central.request("OwnerSpace.u1.control", forged, timeout=5)
            assert not json.loads(bad.data)["ok"]
            async with http.get(f"http://127.0.0.1:{port}/health") as r:
                health = await r.json()
            assert health["handlers"]["echo"]["count"] >= 1 and health["rate_limited"] >= 1
            assert health["nats"]["connected"] and health["nats"]["in_msgs"] >= 42
            assert health["control"]["rejected"] == 1 and health["memory_mb"] > 0
            good = await central.request("OwnerSpace.u1.control",
                                         sign_control(key, "shutdown", "u1"), timeout=5)
            assert json.loads(good.data)["ok"]
            await asyncio.to_thread(proc.wait, 15)
            assert proc.returncode == 0  # graceful shutdown
    finally:
        await central.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
