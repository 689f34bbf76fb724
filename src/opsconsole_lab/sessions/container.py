"""The edit container: one per live session, a real local process standing in for a task.

It owns the user's workspace (``<state>/workspaces/<user>/``, a git repo that outlives
the process), applies instructions (``POST /_ctl/apply``), commits them, serves the preview
(static files, with a ``<base>`` tag and the HMR script injected) and ``/health``, pushes
``reload`` over ``/ws/hmr`` when a commit lands, and exits after ``--idle-timeout``
seconds without activity, reporting why to ``--report-url`` first.

Exit codes: 0 idle expiry or SIGTERM stop, 3 workspace held by another container,
4 start-up failure. Anything else (a kill) is a crash the orchestrator restarts.

Run: ``python -m opsconsole_lab.sessions.container --session S --user U --workspace W``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path

from aiohttp import ClientSession, ClientTimeout, WSMsgType, web

from . import website
from .gitrepo import GitRepo
from .instructions import InstructionError, parse_instruction

log = logging.getLogger("edit-container")
#: orchestrator/hermes-only endpoints live under this prefix; the router never proxies it
CONTROL = "/_ctl"
EXIT_LOCKED = 3
EXIT_STARTUP = 4
_HMR_SCRIPT = """<script>(function(){var p=location.protocol==='https:'?'wss':'ws';
var ws=new WebSocket(p+'://'+location.host+'/ws/hmr?session=%s');
ws.onmessage=function(e){var m=JSON.parse(e.data);if(m.type==='reload'){location.reload();}};
})();</script>"""


class EditContainer:
    def __init__(self, args: argparse.Namespace) -> None:
        self.session_id: str = args.session
        self.user: str = args.user
        self.workspace = Path(args.workspace)
        self.idle_timeout: float = args.idle_timeout
        self.report_url: str = args.report_url
        self.base_path: str = args.base_path or f"/session/{self.session_id}/"
        self.parent_pid: int = args.parent_pid
        self.repo = GitRepo(self.workspace)
        self.started = time.monotonic()
        self.last_activity = time.monotonic()
        self.sockets: set[web.WebSocketResponse] = set()
        self.apply_lock = asyncio.Lock()
        self.exit_reason = ""
        self.done = asyncio.Event()
        self._lock_fd: int | None = None

    def touch(self) -> None:
        self.last_activity = time.monotonic()

    def idle_for(self) -> float:
        return time.monotonic() - self.last_activity

    def lock_workspace(self) -> bool:
        """Hold an exclusive lock on the workspace for the life of this process."""
        self.workspace.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.workspace.parent / f".{self.workspace.name}.lock",
                     os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    async def prepare(self) -> None:
        await self.repo.ensure()
        website.init_site(self.workspace)
        await self.repo.commit_all("init workspace")

    # ------------------------------------------------------------ handlers
    async def health(self, _: web.Request) -> web.Response:
        return web.json_response({
            "status": "ok", "session_id": self.session_id, "user": self.user,
            "pid": os.getpid(), "head": await self.repo.head(),
            "idle_s": round(self.idle_for(), 2), "idle_timeout_s": self.idle_timeout,
            "uptime_s": round(time.monotonic() - self.started, 2),
            "pages": len(website.pages(self.workspace)), "hmr_clients": len(self.sockets)})

    async def apply(self, request: web.Request) -> web.Response:
        self.touch()
        body = await request.json()
        message_id, text = str(body.get("message_id", "")), str(body.get("instruction", ""))
        try:
            ins = parse_instruction(text)
        except InstructionError as exc:
            return web.json_response({"error": str(exc)}, status=422)
        async with self.apply_lock:
            marker = f"[msg {message_id}]"
            if message_id and await self.repo.has_commit_mentioning(marker):
                return web.json_response({"applied": False, "duplicate": True,
                                          "commit": await self.repo.head()})
            try:
                paths = website.apply(self.workspace, ins)
            except InstructionError as exc:
                return web.json_response({"error": str(exc)}, status=422)
            subject = " ".join(text.split())[:100]
            commit = await self.repo.commit_all(f"{subject}\n\n{marker}")
        self.touch()
        if commit:
            await self.broadcast({"type": "reload", "commit": commit, "paths": paths})
        return web.json_response({"applied": True, "duplicate": False, "commit": commit,
                                  "paths": paths, "action": ins.action, "slug": ins.slug})

    async def git_log(self, _: web.Request) -> web.Response:
        return web.json_response(await self.repo.log())

    async def preview(self, request: web.Request) -> web.StreamResponse:
        self.touch()
        root = website.site_dir(self.workspace).resolve()
        rel = request.match_info.get("path", "") or "index.html"
        target = (root / rel).resolve()
        if target.is_dir():
            target = target / "index.html"
        if not target.is_relative_to(root) or not target.is_file():
            raise web.HTTPNotFound(text="no such page")
        if target.suffix != ".html":
            return web.FileResponse(target)
        page = target.read_text(encoding="utf-8")
        inject = f'<base href="{self.base_path}">'
        page = page.replace("<head>", "<head>" + inject, 1)
        page = page.replace("</body>", (_HMR_SCRIPT % self.session_id) + "</body>", 1)
        return web.Response(text=page, content_type="text/html")

    async def hmr(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self.sockets.add(ws)
        try:
            await ws.send_json({"type": "hello", "session_id": self.session_id,
                                "commit": await self.repo.head()})
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                self.touch()
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    data = {}
                if data.get("type") == "ping":
                    await ws.send_json({"type": "pong", "session_id": self.session_id})
        finally:
            self.sockets.discard(ws)
        return ws

    async def broadcast(self, message: dict[str, object]) -> None:
        for ws in list(self.sockets):
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_json(message)

    # -------------------------------------------------------------- lifecycle
    async def idle_watch(self) -> None:
        tick = max(0.1, min(1.0, self.idle_timeout / 10))
        while not self.done.is_set():
            await asyncio.sleep(tick)
            if self.parent_pid and os.getppid() != self.parent_pid:
                self.stop("orphaned")  # the orchestrator is gone: never leak a process
            elif self.idle_for() >= self.idle_timeout:
                self.stop("idle")

    def stop(self, reason: str) -> None:
        if not self.done.is_set():
            self.exit_reason = reason
            self.done.set()

    async def report_exit(self) -> None:
        if not self.report_url:
            return
        body = {"session_id": self.session_id, "user": self.user, "reason": self.exit_reason,
                "idle_s": round(self.idle_for(), 2), "pid": os.getpid(),
                "head": await self.repo.head()}
        with contextlib.suppress(Exception):
            async with ClientSession(timeout=ClientTimeout(total=2)) as http, \
                    http.post(self.report_url, json=body) as r:
                await r.read()


def make_app(c: EditContainer) -> web.Application:
    app = web.Application()
    app.router.add_get("/health", c.health)
    app.router.add_post(CONTROL + "/apply", c.apply)
    app.router.add_get(CONTROL + "/log", c.git_log)
    app.router.add_get("/ws/hmr", c.hmr)
    app.router.add_get("/", c.preview)
    app.router.add_get("/{path:.+}", c.preview)
    return app


async def run(args: argparse.Namespace) -> int:
    c = EditContainer(args)
    if not c.lock_workspace():
        log.error("workspace %s is held by another container", c.workspace)
        return EXIT_LOCKED
    try:
        await c.prepare()
    except Exception:
        log.exception("workspace preparation failed")
        return EXIT_STARTUP
    runner = web.AppRunner(make_app(c), access_log=None, shutdown_timeout=1)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.port).start()
    port = runner.addresses[0][1]
    if args.ready_file:
        ready = Path(args.ready_file)
        tmp = ready.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
        os.replace(tmp, ready)
    log.info("session %s user %s serving on %d", c.session_id, c.user, port)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, c.stop, "stopped")
    loop.add_signal_handler(signal.SIGINT, c.stop, "stopped")
    watcher = asyncio.create_task(c.idle_watch())
    await c.done.wait()
    watcher.cancel()
    log.info("exiting: %s after %.1f s idle", c.exit_reason, c.idle_for())
    await c.report_exit()
    for ws in list(c.sockets):
        with contextlib.suppress(Exception):
            await ws.close(code=1001, message=b"container exiting")
    await runner.cleanup()
    return 0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="edit-container")
    p.add_argument("--session", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--workspace", required=True)
    p.add_argument("--port", type=int, default=0, help="0: any free port (see --ready-file)")
    p.add_argument("--ready-file", default="", help="written with {port, pid} once serving")
    p.add_argument("--idle-timeout", type=float, default=300.0)
    p.add_argument("--report-url", default="")
    p.add_argument("--base-path", default="")
    p.add_argument("--parent-pid", type=int, default=0,
                   help="exit when this process is no longer our parent")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
