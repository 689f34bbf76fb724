"""Client for the fault proxy's control API (used by faults and the lab)."""

from __future__ import annotations

from typing import Any

import aiohttp

from ..errors import UserError


class ProxyClient:
    def __init__(self, session: aiohttp.ClientSession, control_url: str) -> None:
        self.session = session
        self.url = control_url.rstrip("/")

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            async with self.session.request(method, f"{self.url}{path}", json=body,
                                            timeout=aiohttp.ClientTimeout(total=5)) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 400:
                    raise UserError(f"fault proxy: {data.get('error', resp.status)}")
                return data
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise UserError(f"fault proxy at {self.url} unreachable: {type(exc).__name__}",
                            exit_code=2) from exc

    async def links(self) -> list[dict[str, Any]]:
        return await self._call("GET", "/links")

    async def set_fault(self, link: str, **fault: Any) -> dict[str, Any]:
        return await self._call("PUT", f"/links/{link}/fault", fault)

    async def clear(self, link: str) -> dict[str, Any]:
        return await self._call("DELETE", f"/links/{link}/fault")

    async def clear_all(self) -> None:
        await self._call("DELETE", "/faults")
