"""Client of a sessions stack (its router and control API), written from the contract.

docs/contracts/sessions.md defines the routes and shapes; this client follows that page and
shares no code with the lab's reference stack (``opsconsole_lab.sessions``), so a wire bug
on either side shows up as a failing check. Every wait polls with a deadline and raises
``TimeoutError`` naming what it waited for.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")
#: the final states of an email (`GET /api/messages/<id>` → ``state``)
DONE_STATES = frozenset({"applied", "duplicate", "rejected", "failed"})


class SessionFailed(RuntimeError):
    """The email ended rejected or failed (dead-lettered), not applied."""


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


class SessionsClient:
    """One stack behind ``base_url`` (the router; the control API is on the same port)."""

    def __init__(self, base_url: str, timeout: float = 15.0,
                 ssl: SSLContext | bool = True) -> None:
        """``ssl``: the target's TLS context for an https stack (its CA bundle)."""
        self.base_url = base_url.rstrip("/")
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout),
                                           connector=aiohttp.TCPConnector(ssl=ssl))

    async def __aenter__(self) -> SessionsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.close()

    async def _json(self, method: str, path: str, ok: tuple[int, ...] = (200, 202),
                    **kw: Any) -> Any:
        async with self._http.request(method, self.base_url + path, **kw) as r:
            body = await r.json(content_type=None)
            if r.status not in ok:
                raise RuntimeError(f"{method} {path}: HTTP {r.status}: {body}")
            return body

    # ------------------------------------------------------------------ email
    async def send_email(self, user: str, instruction: str, client: str = "default",
                         deliveries: int = 1) -> dict[str, Any]:
        """``POST /api/email`` → ``{message_id, accepted_at, ...}``."""
        return await self._json("POST", "/api/email", json={
            "user": user, "client": client, "instruction": instruction,
            "deliveries": deliveries})

    async def message(self, message_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/messages/{message_id}")

    async def wait_message(self, message_id: str, timeout: float = 30.0,
                           accept: frozenset[str] = frozenset({"applied", "duplicate"})
                           ) -> dict[str, Any]:
        """Until the email reaches a final state; ``SessionFailed`` unless it is in
        ``accept``. The result carries ``session_id`` and the timings."""
        async def done() -> dict[str, Any] | None:
            m = await self.message(message_id)
            return m if m.get("state") in DONE_STATES else None

        m = await wait_for(done, timeout, f"email {message_id} to be handled")
        if m["state"] not in accept:
            raise SessionFailed(f"email {message_id} ended {m['state']}: {m.get('error')}")
        return m

    # --------------------------------------------------------------- sessions
    async def session(self, session_id: str) -> dict[str, Any] | None:
        """``GET /api/sessions/<id>``; None when the stack does not know it (404)."""
        async with self._http.get(f"{self.base_url}/api/sessions/{session_id}") as r:
            return None if r.status == 404 else await r.json(content_type=None)

    async def wait_status(self, session_id: str, *statuses: str,
                          timeout: float = 30.0) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            s = await self.session(session_id)
            return s if s and s.get("status") in statuses else None

        return await wait_for(reached, timeout, f"session {session_id} to be {statuses}")

    async def workspace_log(self, user: str) -> list[dict[str, Any]]:
        return await self._json("GET", f"/api/workspaces/{user}/log")

    # ---------------------------------------------------------------- preview
    def preview_url(self, session_id: str, path: str = "") -> str:
        return f"{self.base_url}/session/{session_id}" + (f"/{path}" if path else "")

    def ws_url(self, session_id: str) -> str:
        return self.base_url.replace("http", "ws", 1) + f"/ws/hmr?session={session_id}"

    async def preview(self, session_id: str, path: str = "") -> tuple[int, str]:
        async with self._http.get(self.preview_url(session_id, path)) as r:
            return r.status, await r.text()

    async def health(self, path: str = "/api/health") -> tuple[int, dict[str, Any]]:
        """GET any router path; the body as JSON, or ``{"text": ...}`` when it is not."""
        async with self._http.get(self.base_url + path) as r:
            text = await r.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = {"text": text}
            return r.status, body if isinstance(body, dict) else {"json": body}

    # ----------------------------------------------------------- operations
    async def scale_down(self, desired: int = 0) -> dict[str, Any]:
        """``POST /api/scale``: force the ECS desired count; containers follow."""
        return await self._json("POST", "/api/scale", json={"desired": desired})

    async def kill_container(self, session_id: str,
                             sig: signal.Signals = signal.SIGKILL) -> int:
        """Kill the session's container process (lab only: the containers are local
        processes, found by the ``pid`` the stack reports). A crash, not a stop."""
        container = ((await self.session(session_id)) or {}).get("container") or {}
        pid = int(container.get("pid") or 0)
        if not pid:
            raise RuntimeError(f"session {session_id} has no container")
        os.kill(pid, sig)
        return pid

    async def status(self) -> dict[str, Any]:
        return await self._json("GET", "/api/status")

    async def counts(self) -> dict[str, Any]:
        """desired, ecs_desired, running, max_capacity, peak_running, starting,
        restarting, sessions: {status: n}."""
        return (await self.status())["counts"]

    async def orphans(self) -> dict[str, list[dict[str, Any]]]:
        return await self._json("GET", "/api/orphans")

    async def wait_no_orphans(self, timeout: float = 15.0) -> dict[str, Any]:
        async def clean() -> dict[str, Any] | None:
            o = await self.orphans()
            return {"ok": True, **o} if not o["containers"] and not o["sessions"] else None

        return await wait_for(clean, timeout, "no orphaned containers or sessions", 0.2)
