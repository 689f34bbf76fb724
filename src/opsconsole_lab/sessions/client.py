"""Driving a sessions stack from a scenario: ``SessionsClient`` and ``launch_stack``.

    async with launch_stack(state_dir, moto_url, idle_timeout=3) as stack, \\
            SessionsClient(stack.url) as sc:
        sent = await sc.send_email("alice", "create page about llamas")
        done = await sc.wait_message(sent["message_id"])          # applied, with timings
        status, page = await sc.preview(done["session_id"], "pages/llamas.html")

Every wait polls with a deadline and raises ``TimeoutError`` naming what it waited for.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import aiohttp

T = TypeVar("T")
DONE_STATES = frozenset({"applied", "duplicate", "rejected", "failed"})


class SessionFailed(RuntimeError):
    """The email ended in a failed (dead-lettered) or rejected state."""


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
    """Async HTTP client for one stack (its router + control API)."""

    def __init__(self, base_url: str, timeout: float = 15.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout))

    @classmethod
    def from_state_dir(cls, state_dir: str | os.PathLike[str]) -> SessionsClient:
        info = json.loads((Path(state_dir) / "stack.json").read_text())
        return cls(info["url"])

    async def __aenter__(self) -> SessionsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.close()

    async def _json(self, method: str, path: str, ok: tuple[int, ...] = (200, 202),
                    **kw: Any) -> Any:
        async with self._http.request(method, self.base_url + path, **kw) as r:
            body = await r.json(content_type=None)
            if r.status not in ok:
                raise RuntimeError(f"{method} {path}: HTTP {r.status}: {body}")
            return body

    # ------------------------------------------------------------------ intake
    async def send_email(self, user: str, instruction: str, client: str = "default",
                         deliveries: int = 1) -> dict[str, Any]:
        """SES send + SQS hand-off; returns {message_id, accepted_at, ...}."""
        return await self._json("POST", "/api/email", json={
            "user": user, "client": client, "instruction": instruction,
            "deliveries": deliveries})

    async def message(self, message_id: str) -> dict[str, Any]:
        return await self._json("GET", f"/api/messages/{message_id}")

    async def wait_message(self, message_id: str, timeout: float = 30.0,
                           accept: frozenset[str] = frozenset({"applied", "duplicate"})
                           ) -> dict[str, Any]:
        """Wait until hermes is done with an email; raise SessionFailed unless its final
        state is in ``accept``. The result carries session_id, commit and timestamps
        (accepted_at, first_received_at, container_ready_at, applied_at)."""
        async def done() -> dict[str, Any] | None:
            m = await self.message(message_id)
            return m if m.get("state") in DONE_STATES else None

        m = await wait_for(done, timeout, f"email {message_id} to be handled")
        if m["state"] not in accept:
            raise SessionFailed(f"email {message_id} ended {m['state']}: {m.get('error')}")
        return m

    # ---------------------------------------------------------------- sessions
    async def session(self, session_id: str) -> dict[str, Any] | None:
        async with self._http.get(f"{self.base_url}/api/sessions/{session_id}") as r:
            return None if r.status == 404 else await r.json()

    async def sessions(self, user: str = "", status: str = "") -> list[dict[str, Any]]:
        params = {k: v for k, v in (("user", user), ("status", status)) if v}
        return await self._json("GET", "/api/sessions", params=params)

    async def wait_status(self, session_id: str, *statuses: str,
                          timeout: float = 30.0) -> dict[str, Any]:
        async def reached() -> dict[str, Any] | None:
            s = await self.session(session_id)
            return s if s and s["status"] in statuses else None

        return await wait_for(reached, timeout, f"session {session_id} to be {statuses}")

    async def wait_active(self, user: str, timeout: float = 30.0) -> dict[str, Any]:
        """The user's active session (with a ready container)."""
        async def active() -> dict[str, Any] | None:
            found = await self.sessions(user=user, status="active")
            return found[0] if found else None

        return await wait_for(active, timeout, f"an active session of {user}")

    async def workspace_log(self, user: str) -> list[dict[str, Any]]:
        return await self._json("GET", f"/api/workspaces/{user}/log")

    # ----------------------------------------------------------------- preview
    def preview_url(self, session_id: str, path: str = "") -> str:
        return f"{self.base_url}/session/{session_id}" + (f"/{path}" if path else "")

    def ws_url(self, session_id: str) -> str:
        return self.base_url.replace("http", "ws", 1) + f"/ws/hmr?session={session_id}"

    async def preview(self, session_id: str, path: str = "") -> tuple[int, str]:
        async with self._http.get(self.preview_url(session_id, path)) as r:
            return r.status, await r.text()

    # ------------------------------------------------------------ faults, ops
    async def scale_down(self, desired: int = 0) -> dict[str, Any]:
        """Force the ECS desired count down; the orchestrator stops containers to match."""
        return await self._json("POST", "/api/scale", json={"desired": desired})

    async def kill_container(self, session_id: str,
                             sig: signal.Signals = signal.SIGKILL) -> int:
        """Kill the session's container process from outside (a crash, not a stop)."""
        s = await self.session(session_id)
        container = (s or {}).get("container") or {}
        pid = int(container.get("pid") or 0)
        if not pid:
            raise RuntimeError(f"session {session_id} has no container")
        os.kill(pid, sig)
        return pid

    async def status(self) -> dict[str, Any]:
        return await self._json("GET", "/api/status")

    async def counts(self) -> dict[str, Any]:
        """desired, ecs_desired, running, max_capacity, peak_running, starting,
        restarting, sessions: {pending, starting, active, expired, failed}."""
        return (await self.status())["counts"]

    async def events(self, since: int = 0) -> list[dict[str, Any]]:
        return await self._json("GET", "/api/events", params={"since": str(since)})

    async def orphans(self) -> dict[str, list[dict[str, Any]]]:
        return await self._json("GET", "/api/orphans")

    async def wait_no_orphans(self, timeout: float = 15.0) -> dict[str, Any]:
        async def clean() -> dict[str, Any] | None:
            o = await self.orphans()
            return {"ok": True, **o} if not o["containers"] and not o["sessions"] else None

        return await wait_for(clean, timeout, "no orphaned containers or sessions", 0.2)

    async def cost(self) -> dict[str, Any]:
        return await self._json("GET", "/api/cost")

    async def health(self, path: str = "/api/health") -> tuple[int, dict[str, Any]]:
        """GET any router path; the body as JSON, or ``{"text": ...}`` when it is not."""
        async with self._http.get(self.base_url + path) as r:
            text = await r.text()
            try:
                body = json.loads(text)
            except ValueError:
                body = {"text": text}
            return r.status, body if isinstance(body, dict) else {"json": body}


class StackProcess:
    """A stack started by :func:`launch_stack`."""

    def __init__(self, proc: asyncio.subprocess.Process, url: str, state_dir: Path) -> None:
        self.proc = proc
        self.url = url
        self.state_dir = state_dir

    async def stop(self, grace: float = 15.0) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), grace)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        return self.proc.returncode or 0


@contextlib.asynccontextmanager
async def launch_stack(state_dir: str | os.PathLike[str], aws_endpoint: str,
                       timeout: float = 30.0, **options: Any) -> AsyncIterator[StackProcess]:
    """Start ``python -m opsconsole_lab.sessions`` and wait until it serves.

    ``options`` are flags without dashes (``max_capacity=2`` → ``--max-capacity 2``).
    The log goes to ``<state_dir>/stack.log``.
    """
    state = Path(state_dir).resolve()
    state.mkdir(parents=True, exist_ok=True)
    stack_file = state / "stack.json"
    stack_file.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "opsconsole_lab.sessions", "--state-dir", str(state),
            "--aws-endpoint", aws_endpoint]
    for key, value in options.items():
        argv += ["--" + key.replace("_", "-"), str(value)]
    with open(state / "stack.log", "ab") as log:
        proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL,
                                                    stdout=log, stderr=log)

    async def up() -> str | None:
        if proc.returncode is not None:
            raise RuntimeError(f"sessions stack exited {proc.returncode}; "
                               f"see {state / 'stack.log'}")
        with contextlib.suppress(FileNotFoundError, ValueError):
            info = json.loads(stack_file.read_text())
            if info.get("phase") == "up":
                return str(info["url"])
        return None

    stack: StackProcess | None = None
    try:
        url = await wait_for(up, timeout, "the sessions stack to serve")
        stack = StackProcess(proc, url, state)
        yield stack
    finally:
        if stack is None:
            stack = StackProcess(proc, "", state)
        await stack.stop()
