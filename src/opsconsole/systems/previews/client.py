"""Client of a previews stack's router: the seed's endpoints only, written from the
contract (docs/contracts/previews.openapi.yaml).

It shares no code with the lab's reference stack (``opsconsole_lab.sessions``), so a wire
bug on either side shows up as a failing check. Every JSON answer is validated against the
contract as it arrives (``log``, a :class:`~opsconsole.scenarios.checks.ContractLog`) for
the pack's contract check. Every wait polls with a deadline
and raises ``TimeoutError`` naming what it waited for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import Any, TypeVar

import aiohttp

from ...scenarios.checks import ContractLog, json_or_text
from ...targets.contract import Contract

T = TypeVar("T")
ACTIVATE = "/hermes/api/sessions/activate"


async def wait_for(check: Callable[[], Awaitable[T | None]], timeout: float, what: str,
                   interval: float = 0.1) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(interval)


class PreviewsClient:
    """One stack behind ``base_url`` (its router)."""

    def __init__(self, base_url: str, timeout: float = 15.0,
                 ssl: SSLContext | bool = True) -> None:
        """``ssl``: the target's TLS context for an https stack (its CA bundle)."""
        self.base_url = base_url.rstrip("/")
        self.ssl = ssl
        self.log = ContractLog(Contract.load("previews"))
        self.contract = self.log.contract
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout),
                                           connector=aiohttp.TCPConnector(ssl=ssl))

    async def __aenter__(self) -> PreviewsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()

    async def _get_json(self, path: str, template: str) -> tuple[int, Any]:
        async with self._http.get(self.base_url + path) as r:
            body = json_or_text(await r.text())
            self.log.check("GET", template, r.status, body)
            return r.status, body

    # -------------------------------------------------------------- the seed
    async def activate(self, user: str, instruction: str, client: str = "opsconsole"
                       ) -> tuple[int, Any]:
        """``POST /hermes/api/sessions/activate`` → (status, body); 202 ``{sessionId,
        status, previewUrl}`` when accepted."""
        async with self._http.post(self.base_url + ACTIVATE, json={
                "clientId": client, "userId": user, "instruction": instruction}) as r:
            body = json_or_text(await r.text())
            self.log.check("POST", ACTIVATE, r.status, body)
            return r.status, body

    async def health(self, path: str, template: str | None = None) -> tuple[int, Any]:
        """GET a health route (``/api/health``, ``/hermes/health``,
        ``/session/<id>/health``); ``template`` is its contract path when it has an id."""
        return await self._get_json(path, template or path)

    async def session_health(self, session_id: str) -> tuple[int, Any]:
        return await self.health(f"/session/{session_id}/health", "/session/{id}/health")

    def preview_url(self, session_id: str, path: str = "") -> str:
        return f"{self.base_url}/session/{session_id}" + (f"/{path}" if path else "")

    def ws_url(self, session_id: str) -> str:
        return self.base_url.replace("http", "ws", 1) + f"/ws/hmr?session={session_id}"

    async def preview(self, session_id: str, path: str = "") -> tuple[int, str]:
        """The preview (or one of its files); an error answer is validated as JSON."""
        async with self._http.get(self.preview_url(session_id, path)) as r:
            text = await r.text()
            if r.status != 200 and r.content_type == "application/json":
                with_id = "/session/{id}/{path}" if path else "/session/{id}"
                self.log.check("GET", with_id, r.status, json_or_text(text))
            return r.status, text

    async def wait_page(self, session_id: str, path: str, text: str, timeout: float
                        ) -> float:
        """Until the preview serves ``path`` containing ``text``; the time it did."""
        async def served() -> float | None:
            status, page = await self.preview(session_id, path)
            return time.time() if status == 200 and text in page else None

        return await wait_for(served, timeout, f"{path} of session {session_id} to show "
                                               f"{text!r}", 0.1)
