"""Initialise, join and configure the lab's OpenBao cluster over its HTTP API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ..errors import UserError
from ..systems.vault.client import VaultApi
from ..targets.http import NETWORK_ERRORS
from .vault_topology import VaultNodeSpec

Json = dict[str, Any]


async def wait_for(what: str, check: Callable[[], Awaitable[bool]], timeout: float,
                   interval: float = 0.1) -> None:
    """Poll ``check`` until it returns True; raise a one-line error at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if await check():
                return
        except NETWORK_ERRORS:
            pass
        if time.monotonic() >= deadline:
            raise UserError(f"lab: timed out after {timeout:.0f}s waiting for {what}",
                            exit_code=2)
        await asyncio.sleep(interval)


async def health(session: aiohttp.ClientSession, node: VaultNodeSpec) -> Json | None:
    return await VaultApi(session, node.api_addr).try_health()


async def initialise(session: aiohttp.ClientSession, leader: VaultNodeSpec) -> tuple[str, str]:
    """Init with one recovery share (static seal); return (root_token, recovery_key)."""
    status, data = await VaultApi(session, leader.api_addr, timeout=10).call(
        "PUT", "sys/init", {"recovery_shares": 1, "recovery_threshold": 1})
    if status != 200:
        errors = "; ".join(data.get("errors", [])) or f"HTTP {status}"
        raise UserError(f"lab: OpenBao init on {leader.name} failed: {errors}", exit_code=2)
    return data["root_token"], data["recovery_keys_base64"][0]


async def join(session: aiohttp.ClientSession, node: VaultNodeSpec,
               leader: VaultNodeSpec, leader_ca_pem: str | None = None) -> None:
    """Join ``node`` to ``leader``'s raft (over TLS: trusting the lab CA's PEM)."""
    body: Json = {"leader_api_addr": leader.api_addr}
    if leader_ca_pem:
        body["leader_ca_cert"] = leader_ca_pem

    async def joined() -> bool:
        status, data = await VaultApi(session, node.api_addr, timeout=10).call(
            "POST", "sys/storage/raft/join", body)
        return status == 200 and bool(data.get("joined"))

    await wait_for(f"{node.name} to join the raft cluster", joined, timeout=20, interval=0.3)


async def raft_servers(session: aiohttp.ClientSession, node: VaultNodeSpec,
                       token: str) -> list[Json]:
    try:
        return await VaultApi(session, node.api_addr, token).raft_servers()
    except NETWORK_ERRORS:
        return []


async def tune_autopilot(session: aiohttp.ClientSession, leader: VaultNodeSpec,
                         token: str) -> None:
    """Promote new nodes to voters after 2 s instead of the default 10 s."""
    await VaultApi(session, leader.api_addr, token, timeout=10).call(
        "POST", "sys/storage/raft/autopilot/configuration",
        {"server_stabilization_time": "2s", "cleanup_dead_servers": False})


async def enable_kv(session: aiohttp.ClientSession, leader: VaultNodeSpec, token: str) -> None:
    api = VaultApi(session, leader.api_addr, token, timeout=10)
    _, data = await api.call("GET", "sys/mounts")
    if "secret/" in data.get("data", data):
        return
    status, _ = await api.call("POST", "sys/mounts/secret",
                               {"type": "kv", "options": {"version": "2"}})
    if status not in (200, 204):
        raise UserError(f"lab: enabling KV v2 at secret/ failed: HTTP {status}", exit_code=2)
