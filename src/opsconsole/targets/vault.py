"""Vault/OpenBao HTTP API, async (aiohttp): health, raft configuration, autopilot."""

from __future__ import annotations

import aiohttp

from .http import NETWORK_ERRORS, Json, get_json


class VaultApi:
    def __init__(self, session: aiohttp.ClientSession, api_addr: str, token: str | None = None,
                 timeout: float = 2.0) -> None:
        self.session = session
        self.addr = api_addr.rstrip("/")
        self.token = token
        self.timeout = timeout

    def _headers(self) -> dict[str, str] | None:
        return {"X-Vault-Token": self.token} if self.token else None

    async def health(self) -> Json:
        """``sys/health`` whatever the status code (501 uninit, 503 sealed, 429 standby).

        Raises on network failure: the caller decides what unreachable means.
        """
        _, data = await get_json(
            self.session, f"{self.addr}/v1/sys/health?standbyok=true&perfstandbyok=true",
            timeout=self.timeout)
        return data

    async def try_health(self) -> Json | None:
        try:
            return await self.health()
        except NETWORK_ERRORS:
            return None

    async def raft_servers(self) -> list[Json]:
        status, data = await get_json(self.session,
                                      f"{self.addr}/v1/sys/storage/raft/configuration",
                                      timeout=self.timeout, headers=self._headers())
        if status != 200:
            return []
        return data.get("data", {}).get("config", {}).get("servers", [])

    async def autopilot_state(self) -> Json:
        status, data = await get_json(self.session,
                                      f"{self.addr}/v1/sys/storage/raft/autopilot/state",
                                      timeout=self.timeout, headers=self._headers())
        return data.get("data", {}) if status == 200 else {}
