"""The ALB stand-in: path routing to the stack's services and to session containers.

  GET /api/health              the control API itself
  POST /hermes/api/sessions/activate  {clientId, userId, instruction} → 202
                               {sessionId, status: "queued", previewUrl} (the seed's way in)
  GET /hermes/health           the hermes worker (polling, in flight, queue depths)
  GET /session/<id>[/<path>]   proxied to that session's container preview
  GET /session/<id>/health     proxied to the container's /health
  GET /ws/hmr?session=<id>     WebSocket, proxied to the container's /ws/hmr
  GET /session/<id>/ws/hmr     the same, by path

A session that is not live answers 404 (unknown), 410 (ended: expired/failed) or
503 with Retry-After (pending, starting, restarting); a container it cannot reach, 502.
With ``--container-proxy URL`` every request to a container goes through that HTTP proxy
(in the lab, the fault proxy that can cut this network).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import WSMsgType, web
from botocore.exceptions import ClientError

from .backoff import Backoff, is_throttle, retry
from .container import CONTROL
from .orchestrator import Container

LOOKUP_RETRY = Backoff(4, 0.05, 0.5)

if TYPE_CHECKING:
    from .stack import Stack

_PASS_HEADERS = ("Content-Type", "Cache-Control", "Last-Modified", "ETag")


class Router:
    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.http: aiohttp.ClientSession | None = None
        self.requests = 0
        self.ws_open = 0
        #: the network between the router and its containers (``--container-proxy``)
        self.proxy = stack.cfg.container_proxy or None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10),
                                          auto_decompress=False)

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_get("/api/health", self.api_health)
        app.router.add_get("/hermes/health", self.hermes_health)
        app.router.add_get("/ws/hmr", self.ws_hmr)
        app.router.add_get("/session/{sid}/health", self.session_health)
        app.router.add_get("/session/{sid}/ws/hmr", self.ws_hmr)
        app.router.add_get("/session/{sid}", self.session_preview)
        app.router.add_get("/session/{sid}/{path:.*}", self.session_preview)

    # ----------------------------------------------------------------- health
    async def api_health(self, _: web.Request) -> web.Response:
        s = self.stack
        uptime: float | str = round(time.time() - s.started_at, 1)
        if s.cfg.wrong_type:  # the test double: a field of the wrong type
            uptime = str(uptime)
        return web.json_response({"status": "ok", "uptime_s": uptime,
                                  "prefix": s.cfg.prefix, "desired": s.orch.desired,
                                  "running": s.orch.status()["running"]})

    async def hermes_health(self, _: web.Request) -> web.Response:
        body = await self.stack.hermes.health()
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    # --------------------------------------------------------------- sessions
    async def _container(self, sid: str) -> Container:
        c = self.stack.orch.get(sid)
        if c is not None and c.state == "running" and c.port:
            return c
        if c is not None:
            raise _json_error(503, f"session {sid} container is {c.state}", retry=True)
        try:  # DynamoDB may throttle: back off, then answer 503 (try again)
            session = await retry(lambda: self.stack.store.get(sid), LOOKUP_RETRY,
                                  is_throttle) if sid.startswith("s-") else None
        except ClientError as exc:
            if not is_throttle(exc):
                raise
            raise _json_error(503, f"session {sid}: the sessions table is throttled",
                              retry=True) from None
        if session is None:
            raise _json_error(404, f"no session {sid}")
        if session["status"] in ("expired", "failed"):
            raise _json_error(410, f"session {sid} is {session['status']}",
                              end_reason=session.get("end_reason", ""))
        raise _json_error(503, f"session {sid} is {session['status']}", retry=True)

    async def session_health(self, request: web.Request) -> web.Response:
        return await self._proxy(request, "health")

    async def session_preview(self, request: web.Request) -> web.Response:
        return await self._proxy(request, request.match_info.get("path", ""))

    async def _proxy(self, request: web.Request, path: str) -> web.Response:
        self.requests += 1
        if path.lstrip("/").startswith(CONTROL.lstrip("/")):
            raise _json_error(404, "not a preview path")
        c = await self._container(request.match_info["sid"])
        assert self.http is not None
        try:
            async with self.http.get(f"{c.url}/{path}", params=request.query,
                                     proxy=self.proxy) as r:
                body = await r.read()
                headers = {h: r.headers[h] for h in _PASS_HEADERS if h in r.headers}
                return web.Response(body=body, status=r.status, headers=headers)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _json_error(502, f"container of {c.session_id} unreachable: {exc}",
                              retry=True) from exc

    # -------------------------------------------------------------- websocket
    async def ws_hmr(self, request: web.Request) -> web.WebSocketResponse:
        sid = request.match_info.get("sid") or request.query.get("session", "")
        if not sid:
            raise _json_error(400, "which session? use /ws/hmr?session=<id>")
        c = await self._container(sid)  # before the upgrade: errors stay plain HTTP
        assert self.http is not None
        try:
            upstream = await self.http.ws_connect(f"{c.url}/ws/hmr", heartbeat=20,
                                                  proxy=self.proxy)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _json_error(502, f"container of {sid} refused the socket: {exc}",
                              retry=True) from exc
        ws = web.WebSocketResponse(heartbeat=20)
        await ws.prepare(request)
        self.ws_open += 1

        async def pump(src: Any, dst: Any) -> None:
            async for msg in src:
                if msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                elif msg.type in (WSMsgType.CLOSE, WSMsgType.ERROR):
                    break

        try:
            tasks = [asyncio.create_task(pump(ws, upstream)),
                     asyncio.create_task(pump(upstream, ws))]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self.ws_open -= 1
            with contextlib.suppress(Exception):
                await upstream.close()
            # 1012 "service restart": the page's script reconnects to the new container
            await ws.close(code=1012 if upstream.closed and not ws.closed else 1000)
        return ws


def _json_error(status: int, message: str, retry: bool = False,
                **extra: Any) -> web.HTTPException:
    cls = {400: web.HTTPBadRequest, 404: web.HTTPNotFound, 410: web.HTTPGone,
           502: web.HTTPBadGateway, 503: web.HTTPServiceUnavailable}[status]
    headers = {"Retry-After": "1"} if retry else None
    return cls(text=json.dumps({"error": message, **extra}), content_type="application/json",
               headers=headers)
