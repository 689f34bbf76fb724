"""Reusable checks: on the live probe state (what the console shows) and on the
system itself (real messages, real writes)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
import uuid
from typing import Any

import nats

from ..targets.vault import VaultApi
from .engine import Abort, Check, Outcome, Run

FRESH_S = 5.0  # a sample older than this says nothing about "now"


def _fresh(ts: float) -> bool:
    return time.time() - ts < FRESH_S


def nats_cluster_healthy(within: float = 15.0) -> Check:
    async def fn(run: Run) -> Outcome:
        views = run.state.nats
        expected = [n.name for c in run.inventory.nats for n in c.nodes]
        evidence: dict[str, Any] = {n: (f"routes={views[n].sample.routes}" if n in views
                                        and views[n].sample.reachable else
                                        (views[n].sample.reason if n in views else "no sample"))
                                    for n in expected}
        if any(n not in views or not _fresh(views[n].sample.ts) for n in expected):
            return "unknown", evidence
        ok = all(views[n].sample.reachable and views[n].sample.healthy for n in expected)
        return ("pass" if ok else "fail"), evidence

    return Check("nats cluster healthy, full routes", fn, within)


def leaves_connected(within: float = 15.0) -> Check:
    async def fn(run: Run) -> Outcome:
        leaves = run.state.leaves
        expected = [lf.name for lf in run.inventory.leaves]
        evidence = {n: (leaves[n].sample.hub or "no hub") if n in leaves else "no sample"
                    for n in expected}
        if any(n not in leaves or not _fresh(leaves[n].sample.ts) for n in expected):
            return "unknown", evidence
        ok = all(leaves[n].sample.healthy and leaves[n].sample.hub for n in expected)
        return ("pass" if ok else "fail"), evidence

    return Check("every leaf connected to a hub", fn, within)


def vault_one_leader(within: float = 15.0) -> Check:
    async def fn(run: Run) -> Outcome:
        vault = run.state.vault
        assert run.inventory.vault is not None
        expected = [n.name for n in run.inventory.vault.nodes]
        evidence = {n: ("leader" if vault[n].leader else
                        "standby" if vault[n].reachable else vault[n].reason)
                    if n in vault else "no sample" for n in expected}
        if any(n not in vault or not _fresh(vault[n].ts) for n in expected):
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


async def vault_request(run: Run, addr: str, method: str, path: str,
                        body: dict[str, Any] | None = None,
                        timeout: float = 3.0) -> tuple[int, dict[str, Any]]:
    return await VaultApi(run.http, addr, vault_token(run), timeout).call(method, path, body)


def leader_addr(run: Run) -> str | None:
    assert run.inventory.vault is not None
    for node in run.inventory.vault.nodes:
        view = run.state.vault.get(node.name)
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


async def nats_roundtrip(pub_url: str, sub_url: str, subject: str, timeout: float = 5.0,
                         sub_inbox: str | None = None) -> tuple[bool, float]:
    """Publish on one server until a subscriber on another gets it; (ok, seconds)."""
    got = asyncio.Event()
    sub_nc = await nats.connect(sub_url, connect_timeout=2, max_reconnect_attempts=1,
                                **({"inbox_prefix": sub_inbox} if sub_inbox else {}))
    pub_nc = await nats.connect(pub_url, connect_timeout=2, max_reconnect_attempts=1)
    started = time.monotonic()
    try:
        async def on_msg(_msg) -> None:
            got.set()

        await sub_nc.subscribe(subject, cb=on_msg)
        await sub_nc.flush()
        while time.monotonic() - started < timeout:
            await pub_nc.publish(subject, b"steady")
            await pub_nc.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(got.wait(), 0.2)
            if got.is_set():
                return True, time.monotonic() - started
        return False, time.monotonic() - started
    finally:
        await sub_nc.close()
        await pub_nc.close()


def message_crosses_relay(within: float = 15.0) -> Check:
    """A message published on central reaches every user's leaf, and back."""

    async def fn(run: Run) -> Outcome:
        central = [n.client_url for c in run.inventory.nats for n in c.nodes]
        evidence: dict[str, Any] = {}
        ok_all = True
        for leaf in run.inventory.leaves:
            ok_in, t_in = await nats_roundtrip(central[0], leaf.client_url,
                                               f"OwnerSpace.{leaf.user}.steady.in")
            ok_out, t_out = await nats_roundtrip(leaf.client_url, central[-1],
                                                 f"OwnerSpace.{leaf.user}.steady.out")
            evidence[leaf.name] = {"central_to_local_s": round(t_in, 3) if ok_in else None,
                                   "local_to_central_s": round(t_out, 3) if ok_out else None}
            ok_all = ok_all and ok_in and ok_out
        return ("pass" if ok_all else "fail"), evidence

    return Check("messages cross central ⇄ every leaf", fn, within)


def bao_in_namespace(run: Run, node: str, *args: str, timeout: float = 30) -> tuple[int, str]:
    """Run ``bao ARGS`` inside a Vault node's own network namespace, against that node
    (it listens on the namespace's loopback): what a client beside a partitioned node
    sees. Returns (exit code, stdout or stderr)."""
    from ..lab import binaries

    topo = run.lab.topology()
    if topo is None or topo.netns is None:
        raise Abort("needs the lab's Vault nodes in network namespaces (root)")
    env = {**os.environ, "BAO_ADDR": "http://127.0.0.1:8200",
           "BAO_TOKEN": run.lab.root_token() or "", "BAO_CLIENT_TIMEOUT": "5s"}
    proc = subprocess.run(["ip", "netns", "exec", topo.netns.namespaces[node], binaries.bao(),
                           *args], capture_output=True, text=True, env=env, timeout=timeout)
    return proc.returncode, proc.stdout if proc.returncode == 0 else proc.stderr
