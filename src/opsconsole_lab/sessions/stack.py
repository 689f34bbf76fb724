"""One sessions stack in one process: intake, hermes, orchestrator, router + control API.

The seed's interface (docs/contracts/previews.openapi.yaml) is the router's (see
:mod:`.router`) plus ``POST /hermes/api/sessions/activate``. With ``--contract-only`` that is
all this process serves; otherwise it adds the lab's control API (same port as the router;
the ALB would send ``/api/*`` here):
  GET  /api/info                 resource names and settings
  GET  /api/status               counts (desired/running/sessions), containers, counters,
                                 usage (for the cost estimate)
  POST /api/email                {user, instruction, client?, deliveries?} → SES + SQS
  GET  /api/messages/<id>        what hermes did with one email (state, session, timings)
  GET  /api/sessions[?user=&status=]   sessions from DynamoDB (by_user GSI when user=)
  GET  /api/sessions/<id>        one session (consistent read)
  GET  /api/workspaces/<user>/log      git history of a workspace (no container needed)
  POST /api/scale                {desired} → ECS desired count; containers follow
  GET  /api/events?since=<seq>   the event log after a sequence number
  GET  /api/orphans              containers without sessions / sessions without containers
  GET  /api/cost                 estimated AWS cost so far at the dated list prices
  POST /internal/containers/<id>/exit  a container reporting why it exits
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time

from aiohttp import web
from botocore.exceptions import ClientError

from .aws import Aws
from .backoff import Backoff, is_throttle, retry
from .config import StackConfig
from .events import EventLog
from .gitrepo import GitRepo
from .instructions import USER_RE, InstructionError
from .intake import Intake
from .metrics import MetricsPublisher
from .orchestrator import Orchestrator
from .pricing import estimate_cost, load_prices
from .router import Router, _json_error
from .store import LIVE, STATUSES, SessionStore, session_id_for
from .worker import Hermes

ACTIVATE_RETRY = Backoff(5, 0.05, 1.0)

log = logging.getLogger("sessions.stack")


class Stack:
    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.started_at = time.time()
        self.aws = Aws(cfg)
        self.events = EventLog(cfg.state_dir / "events.jsonl")
        self.router = Router(self)
        self._tasks: list[asyncio.Task[None]] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def _ensure_resources(self, timeout: float = 60.0) -> None:
        """Create the AWS resources, waiting for the endpoint: in the lab this process may
        start before moto listens."""
        deadline = asyncio.get_running_loop().time() + timeout
        delay = 0.1
        while True:
            try:
                await self.aws.ensure_resources()
                return
            except Exception as exc:  # botocore's connection errors have no common base
                if "connect" not in str(exc).lower() or \
                        asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def start(self) -> None:
        cfg = self.cfg
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        await self.aws.__aenter__()
        await self._ensure_resources()
        res = self.aws.res
        self.store = SessionStore(self.aws.dynamodb, res.table, cfg.retention_seconds)
        self.metrics = MetricsPublisher(self.aws.cloudwatch, res.namespace, res.service,
                                        cfg.metrics_interval)
        self.orch = Orchestrator(cfg, self.aws, self.store, self.events, self.metrics)
        self.intake = Intake(self.aws, self.events)
        self.hermes = Hermes(cfg, self.aws, self.store, self.orch, self.events,
                             self.intake.accepted)
        await self.router.start()
        app = web.Application()
        self.router.add_routes(app)
        self._add_api(app)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=2)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", cfg.port).start()
        self.port = self.runner.addresses[0][1]
        self.orch.report_base = self.url
        await self.orch.start()
        self._tasks = [asyncio.create_task(self.metrics.run()),
                       asyncio.create_task(self.hermes.run())]
        self._write_stack_file("up")
        self.events.emit("stack-up", port=self.port, prefix=cfg.prefix)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _write_stack_file(self, phase: str) -> None:
        tmp = self.cfg.stack_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({"phase": phase, "pid": os.getpid(), "url": self.url,
                                   "port": self.port, "prefix": self.cfg.prefix,
                                   "aws_endpoint": self.cfg.aws_endpoint,
                                   "started_at": self.started_at}, indent=1))
        os.replace(tmp, self.cfg.stack_file)

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.orch.shutdown()
        await self.metrics.close()
        await self.router.close()
        if self.runner is not None:
            await self.runner.cleanup()
        await self.aws.__aexit__(None, None, None)
        self.events.emit("stack-down")
        with contextlib.suppress(OSError):
            self._write_stack_file("down")

    # ------------------------------------------------------------ control API
    def _add_api(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/hermes/api/sessions/activate", self.api_activate)
        # containers report their exit here (inside the stack, not a client's interface)
        r.add_post("/internal/containers/{sid}/exit", self.api_container_exit)
        if self.cfg.contract_only:
            return
        r.add_get("/api/info", self.api_info)
        r.add_get("/api/status", self.api_status)
        r.add_post("/api/email", self.api_email)
        r.add_get("/api/messages/{mid}", self.api_message)
        r.add_get("/api/sessions", self.api_sessions)
        r.add_get("/api/sessions/{sid}", self.api_session)
        r.add_get("/api/workspaces/{user}/log", self.api_workspace_log)
        r.add_post("/api/scale", self.api_scale)
        r.add_get("/api/events", self.api_events)
        r.add_get("/api/orphans", self.api_orphans)
        r.add_get("/api/cost", self.api_cost)

    async def api_info(self, _: web.Request) -> web.Response:
        return web.json_response({"resources": self.aws.res.as_dict(),
                                  "queue_url": self.aws.queue_url, "dlq_url": self.aws.dlq_url,
                                  "config": self.cfg.public(), "url": self.url})

    def usage(self) -> dict[str, float]:
        return {**self.aws.meter.summary(), **self.orch.usage()}

    async def api_status(self, _: web.Request) -> web.Response:
        orch = self.orch.status()
        return web.json_response({
            "counts": {"desired": orch["desired"], "ecs_desired": orch["ecs_desired"],
                       "running": orch["running"], "max_capacity": orch["max_capacity"],
                       "peak_running": orch["peak_running"], "starting": orch["starting"],
                       "restarting": orch["restarting"], "sessions": self.store.counts()},
            "containers": orch["containers"], "tasks_started": orch["tasks_started"],
            "events": dict(self.events.counters), "hermes": dict(self.hermes.counters),
            "last_event_seq": self.events.seq, "usage": self.usage(),
            "metrics": {"published": self.metrics.published, "failures": self.metrics.failures},
            "router": {"requests": self.router.requests, "ws_open": self.router.ws_open}})

    async def api_activate(self, request: web.Request) -> web.Response:
        """The seed's activation: the same path as an email (SES → SQS → hermes → DynamoDB
        → a container). ``sessionId`` is the user's live session, or the one this
        instruction opens (hermes names a new session after the message that opens it)."""
        try:
            body = await request.json()
        except ValueError:
            raise _json_error(400, "the body is not JSON") from None
        if not isinstance(body, dict):
            raise _json_error(400, "the body must be an object")
        missing = [k for k in ("clientId", "userId", "instruction")
                   if not isinstance(body.get(k), str) or not body[k]]
        if missing:
            raise _json_error(400, "missing or empty: " + ", ".join(missing))
        user = body["userId"]
        try:  # DynamoDB may throttle: back off, then refuse cleanly (503), nothing queued
            current = await retry(lambda: self.store.lease(user), ACTIVATE_RETRY, is_throttle)
            live = await retry(lambda: self.store.get(current), ACTIVATE_RETRY,
                               is_throttle) if current else None
        except ClientError as exc:
            if not is_throttle(exc):
                raise
            raise _json_error(503, "the sessions table is throttled: try again") from None
        try:
            sent = await self.intake.submit(user, body["clientId"], body["instruction"])
        except InstructionError as exc:
            raise _json_error(400, str(exc)) from exc
        sid = session_id_for(sent["message_id"])
        if current and live is not None and live["status"] in LIVE:
            sid = current
        return web.json_response({"sessionId": sid, "status": "queued",
                                  "previewUrl": f"{self.url}/session/{sid}"}, status=202)

    async def api_email(self, request: web.Request) -> web.Response:
        body = await request.json()
        try:
            sent = await self.intake.submit(str(body.get("user", "")),
                                            str(body.get("client", "default")),
                                            str(body.get("instruction", "")),
                                            int(body.get("deliveries", 1)))
        except InstructionError as exc:
            raise _json_error(400, str(exc)) from exc
        return web.json_response(sent, status=202)

    async def api_message(self, request: web.Request) -> web.Response:
        entry = self.hermes.messages.get(request.match_info["mid"])
        if entry is None:
            accepted = self.intake.accepted.get(request.match_info["mid"])
            if accepted is None:
                raise _json_error(404, "unknown message")
            entry = {"message_id": request.match_info["mid"], "state": "queued",
                     "accepted_at": accepted}
        return web.json_response(entry)

    async def api_sessions(self, request: web.Request) -> web.Response:
        user = request.query.get("user", "")
        if user and not USER_RE.match(user):
            raise _json_error(400, "invalid user")
        items = await (self.store.by_user(user) if user else self.store.scan())
        status = request.query.get("status", "")
        if status:
            wanted = set(status.split(","))
            if not wanted <= set(STATUSES):
                raise _json_error(400, f"status must be in {STATUSES}")
            items = [i for i in items if i["status"] in wanted]
        items.sort(key=lambda i: i.get("created_at", 0), reverse=True)
        return web.json_response(items)

    async def api_session(self, request: web.Request) -> web.Response:
        item = await self.store.get(request.match_info["sid"])
        if item is None:
            raise _json_error(404, "no such session")
        c = self.orch.get(item["session_id"])
        item["container"] = c.view() if c else None
        return web.json_response(item)

    async def api_workspace_log(self, request: web.Request) -> web.Response:
        user = request.match_info["user"]
        if not USER_RE.match(user):
            raise _json_error(400, "invalid user")
        path = self.cfg.workspaces / user
        if not (path / ".git").is_dir():
            raise _json_error(404, f"no workspace for {user}")
        return web.json_response(await GitRepo(path).log(200))

    async def api_scale(self, request: web.Request) -> web.Response:
        desired = int((await request.json()).get("desired", 0))
        stopped = await self.orch.scale_to(desired)
        return web.json_response({"desired": desired, "stopped": stopped,
                                  "running": self.orch.status()["running"]})

    async def api_events(self, request: web.Request) -> web.Response:
        return web.json_response(self.events.since(int(request.query.get("since", "0"))))

    async def api_orphans(self, _: web.Request) -> web.Response:
        return web.json_response(await self.orch.orphans())

    async def api_cost(self, _: web.Request) -> web.Response:
        usage = self.usage()
        return web.json_response({"usage": usage, **estimate_cost(usage, load_prices())})

    async def api_container_exit(self, request: web.Request) -> web.Response:
        self.orch.on_exit_report(request.match_info["sid"], await request.json())
        return web.json_response({"ok": True})


async def serve(cfg: StackConfig) -> None:
    stack = Stack(cfg)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stack.start()
        log.info("sessions stack on %s (moto %s)", stack.url, cfg.aws_endpoint)
        await stop.wait()
    finally:
        await stack.stop()
