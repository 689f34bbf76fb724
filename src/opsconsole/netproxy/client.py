"""Client for the fault proxy's control API (used by faults and the lab)."""

from __future__ import annotations

from typing import Any

import aiohttp

from ..errors import UserError


class ProxyClient:
    """The control API of a fault proxy (the TCP netproxy and the HTTP fault proxy alike):
    an answer >= 400 or an unreachable proxy is a one-line ``UserError`` led by ``label``."""

    def __init__(self, session: aiohttp.ClientSession, control_url: str,
                 label: str = "fault proxy") -> None:
        self.session = session
        self.url = control_url.rstrip("/")
        self.label = label

    async def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            async with self.session.request(method, f"{self.url}{path}", json=body,
                                            timeout=aiohttp.ClientTimeout(total=5)) as resp:
                data = await resp.json(content_type=None)
                if resp.status >= 400:
                    raise UserError(f"{self.label}: the fault proxy refused: "
                                    f"{data.get('error', resp.status)}")
                return data
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise UserError(f"{self.label}: the fault proxy at {self.url} is unreachable: "
                            f"{type(exc).__name__}", exit_code=2) from exc

    async def links(self) -> list[dict[str, Any]]:
        return await self.call("GET", "/links")

    async def set_fault(self, link: str, **fault: Any) -> dict[str, Any]:
        return await self.call("PUT", f"/links/{link}/fault", fault)

    async def clear(self, link: str) -> dict[str, Any]:
        return await self.call("DELETE", f"/links/{link}/fault")

    async def clear_all(self) -> None:
        await self.call("DELETE", "/faults")
