"""SSH faults against a real SSH server (asyncssh, loopback) whose commands run in a
network namespace the test creates: `tc netem` really changes a real interface."""

from __future__ import annotations

import os
import subprocess
import uuid

import aiohttp
import pytest

from opsconsole.config import Inventory
from opsconsole.core.bus import EventBus
from opsconsole.errors import UserError
from opsconsole.faults import FaultContext, FaultLedger, FaultManager
from opsconsole.systems.ssh.config import SshConfig, SshHost

from ..ssh_servers import start_server, write_client_key

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root for a network namespace")


@pytest.fixture
async def ssh_host(tmp_path):
    """An SSH 'host' = asyncssh server on loopback + a netns with a real eth0."""
    tag = uuid.uuid4().hex[:6]
    ns = f"oc-sshtest-{tag}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    subprocess.run(["ip", "link", "add", f"ocst{tag}", "type", "veth", "peer", "name", "eth0",
                    "netns", ns], check=True)
    subprocess.run(["ip", "-n", ns, "link", "set", "eth0", "up"], check=True)
    client_key, key_path = write_client_key(tmp_path)
    server = await start_server(client_key, netns=ns)
    try:
        yield {"ns": ns, "port": server.port, "pinned": server.pinned, "key": key_path,
               "commands": server.stats.commands}
    finally:
        await server.close()
        subprocess.run(["ip", "netns", "del", ns], check=False)  # takes the veth pair too


def _qdisc(ns: str) -> str:
    return subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "show", "dev", "eth0"],
                          capture_output=True, text=True).stdout


def _inventory(h: dict, faults: bool = True, pin: bool = True) -> Inventory:
    host = SshHost(name="edge-1", host="127.0.0.1", port=h["port"], user="ops", faults=faults,
                   identity_file=h["key"], host_key=h["pinned"] if pin else None,
                   known_hosts=None)
    return Inventory(name="ssh-test", ssh=SshConfig(hosts=[host]))


def _kernel_has(ns: str, qdisc: str) -> bool:
    add = subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "add", "dev", "eth0",
                          "root", *qdisc.split()], capture_output=True)
    subprocess.run(["ip", "netns", "exec", ns, "tc", "qdisc", "del", "dev", "eth0", "root"],
                   capture_output=True)
    return add.returncode == 0


async def test_bandwidth_over_ssh_is_injected_and_healed(ssh_host, tmp_path) -> None:
    async with aiohttp.ClientSession() as http:
        ledger = FaultLedger(tmp_path / "faults.jsonl")
        manager = FaultManager(FaultContext(_inventory(ssh_host), http), EventBus(),
                               ledger=ledger)
        rec = await manager.inject("ssh.bandwidth", "edge-1", {"rate_kbit": 800})
        assert "tbf" in _qdisc(ssh_host["ns"]) and "800Kbit" in _qdisc(ssh_host["ns"])
        # Heal from the ledger record alone, as a fresh process would (other inventory).
        fresh = FaultManager(FaultContext(Inventory(name="other"), http), EventBus(),
                             ledger=ledger)
        assert await fresh.heal(ledger.records()[rec.id])
    assert "tbf" not in _qdisc(ssh_host["ns"])
    assert ledger.open_records() == []
    assert ssh_host["commands"][-1] == "tc qdisc del dev eth0 root"


async def test_netem_over_ssh_applies_or_fails_cleanly(ssh_host, tmp_path) -> None:
    """Where the kernel has netem it is applied and healed; where it has not (this CI
    kernel), the remote error comes back as one line and nothing is left open."""
    supported = _kernel_has(ssh_host["ns"], "netem delay 10ms")
    async with aiohttp.ClientSession() as http:
        ledger = FaultLedger(tmp_path / "faults.jsonl")
        manager = FaultManager(FaultContext(_inventory(ssh_host), http), EventBus(),
                               ledger=ledger)
        if supported:
            rec = await manager.inject("ssh.netem", "edge-1", {"delay_ms": 120})
            assert "delay 120ms" in _qdisc(ssh_host["ns"])
            assert await manager.heal(rec)
        else:
            with pytest.raises(UserError, match=r"inject command failed.*qdisc"):
                await manager.inject("ssh.netem", "edge-1", {"delay_ms": 120})
            assert ssh_host["commands"] == ["tc qdisc add dev eth0 root netem delay 120ms"]
    assert "netem" not in _qdisc(ssh_host["ns"])
    assert ledger.open_records() == []


async def test_ssh_faults_refuse_hosts_without_faults_true_and_unpinned_keys(
        ssh_host, tmp_path) -> None:
    async with aiohttp.ClientSession() as http:
        manager = FaultManager(FaultContext(_inventory(ssh_host, faults=False), http),
                               EventBus(), ledger=FaultLedger(tmp_path / "a.jsonl"))
        with pytest.raises(UserError, match="not a target"):
            await manager.inject("ssh.netem", "edge-1")
        unpinned = _inventory(ssh_host, pin=False).model_copy()
        unpinned.ssh.hosts[0].known_hosts = tmp_path / "empty_known_hosts"
        (tmp_path / "empty_known_hosts").write_text("")
        manager = FaultManager(FaultContext(unpinned, http), EventBus(),
                               ledger=FaultLedger(tmp_path / "b.jsonl"))
        with pytest.raises(UserError, match="host key not trusted"):
            await manager.inject("ssh.netem", "edge-1")
        with pytest.raises(UserError, match="not a plain name"):
            await manager.inject("ssh.netem", "edge-1", {"dev": "eth0; reboot"})
    assert ssh_host["commands"] == []
    assert "netem" not in _qdisc(ssh_host["ns"])
