"""Vault checks and helpers shared by the Vault packs: leadership, writes, requests."""

from __future__ import annotations

import os
import subprocess
import uuid
from typing import Any

from ...scenarios.checks import fresh
from ...scenarios.engine import Abort, Check, Outcome, Run
from .client import VaultApi


def vault_one_leader(within: float = 15.0) -> Check:
    async def fn(run: Run) -> Outcome:
        vault = run.state.vault.nodes
        assert run.inventory.vault is not None
        expected = [n.name for n in run.inventory.vault.nodes]
        evidence = {n: ("leader" if vault[n].leader else
                        "standby" if vault[n].reachable else vault[n].reason)
                    if n in vault else "no sample" for n in expected}
        if any(n not in vault or not fresh(vault[n].ts) for n in expected):
            return "unknown", evidence
        leaders = [n for n in expected if vault[n].reachable and vault[n].leader]
        unsealed = all(vault[n].reachable and vault[n].sealed is False for n in expected)
        voters = sum(1 for n in expected if vault[n].voter)
        evidence["voters"] = voters
        ok = len(leaders) == 1 and unsealed and voters == len(expected)
        return ("pass" if ok else "fail"), evidence

    return Check("vault: all unsealed voters, exactly one leader", fn, within)


def vault_token(run: Run) -> str | None:
    vault = run.inventory.vault
    return vault.token.resolve() if vault and vault.token else None


def vault_api(run: Run, addr: str, timeout: float = 3.0) -> VaultApi:
    """``addr`` of the inventory's cluster, with its token, TLS and namespace."""
    return VaultApi.for_cluster(run.http, run.inventory.vault, addr, timeout)


async def vault_request(run: Run, addr: str, method: str, path: str,
                        body: dict[str, Any] | None = None,
                        timeout: float = 3.0) -> tuple[int, dict[str, Any]]:
    """One Vault API call; a write (anything but GET and LIST) is refused read-only."""
    if method.upper() not in ("GET", "LIST"):
        run.mutate(f"{method} {path}", addr)
    return await vault_api(run, addr, timeout).call(method, path, body)


def leader_addr(run: Run) -> str | None:
    assert run.inventory.vault is not None
    for node in run.inventory.vault.nodes:
        view = run.state.vault.nodes.get(node.name)
        if view is not None and view.reachable and view.leader:
            return node.api_addr
    return None


def vault_write_read(within: float = 15.0) -> Check:
    async def fn(run: Run) -> Outcome:
        addr = leader_addr(run)
        if addr is None:
            return "unknown", {"leader": None}
        value = uuid.uuid4().hex[:8]
        status, _ = await vault_request(run, addr, "POST", "secret/data/opsconsole/steady",
                                        {"data": {"v": value}})
        rstatus, data = await vault_request(run, addr, "GET", "secret/data/opsconsole/steady")
        got = data.get("data", {}).get("data", {}).get("v")
        return ("pass" if status == 200 and got == value else "fail"), {
            "leader": addr, "write_status": status, "read_status": rstatus,
            "read_back_matches": got == value}

    return Check("vault: write then read back through the leader", fn, within)


#: what a scenario whose steady state is :func:`vault_write_read` changes
WRITES_STEADY_KEY = "write the KV secret secret/opsconsole/steady (steady state)"



def bao_in_namespace(run: Run, node: str, *args: str, timeout: float = 30) -> tuple[int, str]:
    """Run ``bao ARGS`` inside a Vault node's own network namespace, against that node
    (it listens on the namespace's loopback): what a client beside a partitioned node
    sees. Returns (exit code, stdout or stderr); a ``kv`` write is refused read-only."""
    if args[:1] == ("kv",) and args[1:2] != ("get",):
        run.mutate(f"bao {' '.join(args[:3])}", node)
    topo = run.lab.topology()
    if topo is None or topo.netns is None:
        raise Abort("needs the lab's Vault nodes in network namespaces (root)")
    ca = run.lab.ca_cert
    env = {**os.environ, "BAO_ADDR": f"{'https' if ca else 'http'}://127.0.0.1:8200",
           "BAO_TOKEN": run.lab.root_token() or "", "BAO_CLIENT_TIMEOUT": "5s",
           **({"BAO_CACERT": str(ca)} if ca else {})}
    argv = ["ip", "netns", "exec", topo.netns.namespaces[node], run.lab.binary("bao"), *args]
    proc = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout)
    return proc.returncode, proc.stdout if proc.returncode == 0 else proc.stderr

