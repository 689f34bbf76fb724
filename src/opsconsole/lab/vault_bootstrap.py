"""Initialise, join and configure the lab's OpenBao cluster over its HTTP API."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from ..errors import UserError
from ..targets.http import NETWORK_ERRORS
from ..targets.vault import VaultApi
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


async def _call(session: aiohttp.ClientSession, method: str, url: str, token: str | None = None,
                body: Json | None = None) -> tuple[int, Json]:
    headers = {"X-Vault-Token": token} if token else {}
    async with session.request(method, url, json=body, headers=headers,
                               timeout=aiohttp.ClientTimeout(total=10)) as resp:
        text = await resp.text()
        try:
            data = await resp.json(content_type=None) if text else {}
        except ValueError:
            data = {"raw": text[:200]}
        return resp.status, data or {}


async def initialise(session: aiohttp.ClientSession, leader: VaultNodeSpec) -> tuple[str, str]:
    """Init with one recovery share (static seal); return (root_token, recovery_key)."""
    status, data = await _call(session, "PUT", f"{leader.api_addr}/v1/sys/init",
                               body={"recovery_shares": 1, "recovery_threshold": 1})
    if status != 200:
        errors = "; ".join(data.get("errors", [])) or f"HTTP {status}"
        raise UserError(f"lab: OpenBao init on {leader.name} failed: {errors}", exit_code=2)
    return data["root_token"], data["recovery_keys_base64"][0]


async def join(session: aiohttp.ClientSession, node: VaultNodeSpec,
               leader: VaultNodeSpec) -> None:
    async def joined() -> bool:
        status, data = await _call(session, "POST",
                                   f"{node.api_addr}/v1/sys/storage/raft/join",
                                   body={"leader_api_addr": leader.api_addr})
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
    await _call(session, "POST", f"{leader.api_addr}/v1/sys/storage/raft/autopilot/configuration",
                token, body={"server_stabilization_time": "2s",
                             "cleanup_dead_servers": False})


async def enable_kv(session: aiohttp.ClientSession, leader: VaultNodeSpec, token: str) -> None:
    status, data = await _call(session, "GET", f"{leader.api_addr}/v1/sys/mounts", token)
    mounts = data.get("data", data)
    if "secret/" in mounts:
        return
    status, data = await _call(session, "POST", f"{leader.api_addr}/v1/sys/mounts/secret", token,
                               body={"type": "kv", "options": {"version": "2"}})
    if status not in (200, 204):
        raise UserError(f"lab: enabling KV v2 at secret/ failed: HTTP {status}", exit_code=2)
