"""Vault/OpenBao HTTP API, async (aiohttp): health, raft configuration, autopilot."""

from __future__ import annotations

import json
from ssl import SSLContext
from typing import TYPE_CHECKING

import aiohttp

from ...targets.http import NETWORK_ERRORS, Json, get_json, ssl_for

if TYPE_CHECKING:
    from .config import VaultCluster
from . import request_metrics as requests


class VaultApi:
    """One node's API. Build it with :meth:`for_cluster` to get the inventory's token, TLS
    and namespace; the lab's bootstrap passes its own ``ssl`` context."""

    def __init__(self, session: aiohttp.ClientSession, api_addr: str, token: str | None = None,
                 timeout: float = 2.0, ssl: SSLContext | bool = True,
                 namespace: str | None = None) -> None:
        self.session = session
        self.addr = api_addr.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.ssl = ssl
        self.namespace = namespace

    @classmethod
    def for_cluster(cls, session: aiohttp.ClientSession, cluster: VaultCluster | None,
                    api_addr: str, timeout: float = 2.0, token: bool = True) -> VaultApi:
        """``api_addr`` of ``cluster`` with its token (unless ``token`` is false), CA and
        namespace; a token or CA that cannot be read raises ``ConfigError`` (one line)."""
        if cluster is None:
            return cls(session, api_addr, timeout=timeout)
        secret = cluster.token.resolve() if token and cluster.token is not None else None
        return cls(session, api_addr, secret, timeout, ssl_for(cluster, api_addr, "vault"),
                   cluster.namespace)

    def headers(self) -> dict[str, str] | None:
        headers = {"X-Vault-Token": self.token} if self.token else {}
        if self.namespace:
            headers["X-Vault-Namespace"] = self.namespace
        return headers or None

    async def call(self, method: str, path: str, body: Json | None = None,
                   timeout: float | None = None) -> tuple[int, Json]:
        """Any API call (``path`` below /v1/): (HTTP status, JSON body or {}).

        Counted in ``opsconsole_vault_requests_total`` (a network failure or 5xx is an error).
        """
        try:
            async with self.session.request(
                    method, f"{self.addr}/v1/{path}", json=body, headers=self.headers(),
                    ssl=self.ssl,
                    timeout=aiohttp.ClientTimeout(total=timeout or self.timeout)) as resp:
                text = await resp.text()
        except NETWORK_ERRORS:
            requests.count(self.addr, ok=False)
            raise
        requests.count(self.addr, ok=resp.status < 500)
        try:
            data = json.loads(text) if text.strip() else {}
        except ValueError:
            data = {"raw": text[:200]}
        return resp.status, data if isinstance(data, dict) else {"data": data}

    async def health(self) -> Json:
        """``sys/health`` whatever the status code (501 uninit, 503 sealed, 429 standby).

        Raises on network failure: the caller decides what unreachable means.
        """
        try:
            _, data = await get_json(
                self.session, f"{self.addr}/v1/sys/health?standbyok=true&perfstandbyok=true",
                timeout=self.timeout, ssl=self.ssl)
        except NETWORK_ERRORS:
            requests.count(self.addr, ok=False)
            raise
        requests.count(self.addr, ok=True)  # 503 sealed / 429 standby are answers here
        return data

    async def try_health(self) -> Json | None:
        try:
            return await self.health()
        except NETWORK_ERRORS:
            return None

    async def raft_servers(self) -> list[Json]:
        status, data = await get_json(self.session,
                                      f"{self.addr}/v1/sys/storage/raft/configuration",
                                      timeout=self.timeout, headers=self.headers(), ssl=self.ssl)
        if status != 200:
            return []
        return data.get("data", {}).get("config", {}).get("servers", [])

    async def autopilot_state(self) -> Json:
        status, data = await get_json(self.session,
                                      f"{self.addr}/v1/sys/storage/raft/autopilot/state",
                                      timeout=self.timeout, headers=self.headers(), ssl=self.ssl)
        return data.get("data", {}) if status == 200 else {}
