"""The lab's HTTP fault proxy (its own process): two listeners and a control API.

- ``aws``: a reverse proxy in front of the AWS endpoint (moto in the lab). Every call is
  counted by the service of its SigV4 scope; a throttle rule makes a fraction of one
  service's calls (or every service's: ``*``) answer with that service's real throttling
  error (see :mod:`.aws_shapes`) instead of reaching the endpoint, for a window or until
  cleared. It starts listening only once the endpoint accepts connections, and an endpoint
  that stops answering closes the client's connection: a client sees what it would see
  talking to the endpoint directly.
- ``forward``: an HTTP forward proxy (absolute-form requests and WebSocket upgrades, to
  loopback only) that the previews router reaches its containers through. A ``cut`` drops
  everything (requests hang until the client gives up; open sockets stop carrying
  messages; when healed, whatever lived through the cut is reset) or, ``mode = reset``,
  resets every connection at once.

Run: ``python -m opsconsole.netproxy.http --upstream URL --aws-port N --forward-port N
--control-port N``. Control API (loopback): ``GET /healthz``, ``GET /stats``,
``PUT|DELETE /aws/throttle/{service}`` (``{"fraction", "window_s"}``),
``PUT|DELETE /forward/cut`` (``{"mode"}``), ``DELETE /faults``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, NoReturn

import aiohttp
from aiohttp import WSMsgType, web
from yarl import URL

from .aws_shapes import identify, throttle_response

_HOP = frozenset(h.lower() for h in (
    "Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Authorization", "Proxy-Connection",
    "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Content-Length"))
_NOT_ADDED = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
CUT_MODES = ("drop", "reset")


def _forwarded(headers: Any) -> list[tuple[str, str]]:
    return [(k, v) for k, v in headers.items() if k.lower() not in _HOP]


def _hang_up(request: web.Request) -> NoReturn:
    """Close the client's connection without an answer (what a dead peer does)."""
    if request.transport is not None:
        request.transport.abort()
    raise asyncio.CancelledError  # aiohttp drops the handler quietly


# -------------------------------------------------------------------------- aws
@dataclass
class Throttle:
    fraction: float
    until: float | None  # time.monotonic() deadline; None: until cleared

    @property
    def active(self) -> bool:
        return self.until is None or time.monotonic() < self.until

    def view(self) -> dict[str, Any]:
        left = None if self.until is None else round(max(0.0, self.until - time.monotonic()), 2)
        return {"fraction": self.fraction, "remaining_s": left, "active": self.active}


@dataclass
class ServiceCounts:
    passed: int = 0
    throttled: int = 0
    upstream_errors: int = 0
    throttled_by_operation: Counter[str] = field(default_factory=Counter)

    def view(self) -> dict[str, Any]:
        return {"passed": self.passed, "throttled": self.throttled,
                "upstream_errors": self.upstream_errors,
                "throttled_by_operation": dict(self.throttled_by_operation)}


class AwsProxy:
    def __init__(self, upstream: str, rng: random.Random | None = None) -> None:
        self.upstream = upstream.rstrip("/")
        self.rules: dict[str, Throttle] = {}
        self.counts: dict[str, ServiceCounts] = {}
        self.rng = rng or random.Random()
        self.http: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=5))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    def rule_for(self, service: str) -> Throttle | None:
        if not service:
            return None  # unsigned (moto's own API, health probes): never throttled
        rule = self.rules.get(service) or self.rules.get("*")
        return rule if rule is not None and rule.active else None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        call = identify(request.method, request.path, request.headers, request.query, body)
        counts = self.counts.setdefault(call.service or "-", ServiceCounts())
        rule = self.rule_for(call.service)
        if rule is not None and self.rng.random() < rule.fraction:
            counts.throttled += 1
            counts.throttled_by_operation[call.operation] += 1
            status, headers, payload = throttle_response(
                call, request.headers.get("Content-Type", ""))
            return web.Response(status=status, headers=headers, body=payload)
        assert self.http is not None
        try:
            async with self.http.request(
                    request.method, URL(self.upstream + request.raw_path, encoded=True),
                    headers=_forwarded(request.headers), data=body or None,
                    allow_redirects=False, skip_auto_headers=_NOT_ADDED) as up:
                payload = await up.read()
                headers = _forwarded(up.headers)
                status = up.status
                length = up.headers.get("Content-Length")
        except (aiohttp.ClientError, OSError, TimeoutError):
            counts.upstream_errors += 1
            _hang_up(request)
        counts.passed += 1
        if request.method == "HEAD":  # keep the length the endpoint declared
            resp = web.StreamResponse(status=status, headers=headers)
            if length is not None:
                resp.content_length = int(length)
            await resp.prepare(request)
            await resp.write_eof()
            return resp
        return web.Response(status=status, headers=headers, body=payload)

    def stats(self) -> dict[str, Any]:
        return {"upstream": self.upstream,
                "services": {s: c.view() for s, c in sorted(self.counts.items())},
                "throttles": {s: r.view() for s, r in sorted(self.rules.items())}}


# ---------------------------------------------------------------------- forward
class ForwardProxy:
    """Router → containers: loopback targets only."""

    def __init__(self) -> None:
        self.cut: str | None = None  # None, or one of CUT_MODES
        self.healed = asyncio.Event()
        self.healed.set()
        self.passed = 0
        self.dropped = 0
        self.reset = 0
        self.refused = 0
        self.sockets: set[tuple[web.WebSocketResponse, Any]] = set()
        self.lived_through_cut: set[tuple[web.WebSocketResponse, Any]] = set()
        self.http: aiohttp.ClientSession | None = None
        self._closing: set[asyncio.Task[None]] = set()  # referenced until done

    def _close_later(self, pair: tuple[web.WebSocketResponse, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._close_pair(*pair))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def start(self) -> None:
        self.http = aiohttp.ClientSession(auto_decompress=False,
                                          connector=aiohttp.TCPConnector(limit=0),
                                          timeout=aiohttp.ClientTimeout(total=None,
                                                                        sock_connect=5))

    async def close(self) -> None:
        for ws, up in list(self.sockets):
            await self._close_pair(ws, up)
        if self.http is not None:
            await self.http.close()

    def set_cut(self, mode: str | None) -> None:
        was = self.cut
        self.cut = mode
        if mode is None:
            self.healed.set()
            stale, self.lived_through_cut = self.lived_through_cut, set()
            for pair in stale:  # a socket that lived through the cut is reset
                self._close_later(pair)
            return
        self.healed.clear()
        if was is None:
            self.lived_through_cut |= self.sockets
        if mode == "reset":
            for pair in list(self.sockets):
                self._close_later(pair)

    @staticmethod
    async def _close_pair(ws: web.WebSocketResponse, up: Any) -> None:
        with contextlib.suppress(Exception):
            await up.close()
        with contextlib.suppress(Exception):
            await ws.close(code=1001)  # going away: the page reconnects

    async def _blocked(self, request: web.Request) -> None:
        """Apply a cut to a new request: reset it, or hold it until the heal, then reset."""
        if self.cut == "reset":
            self.reset += 1
            _hang_up(request)
        self.dropped += 1
        await self.healed.wait()
        _hang_up(request)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        url = request.url
        if not request.raw_path.startswith(("http://", "ws://")) or not _loopback(url.host):
            self.refused += 1
            return web.json_response({"error": "forward proxy: loopback http targets only"},
                                     status=403)
        if self.cut is not None:
            await self._blocked(request)
        assert self.http is not None
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, url)
        body = await request.read()
        try:
            async with self.http.request(request.method, url, headers=_forwarded(request.headers),
                                         data=body or None, allow_redirects=False,
                                         skip_auto_headers=_NOT_ADDED) as up:
                payload = await up.read()
                status, headers = up.status, _forwarded(up.headers)
        except (aiohttp.ClientError, OSError, TimeoutError):
            _hang_up(request)
        if self.cut is not None:  # cut while the answer was on its way
            await self._blocked(request)
        self.passed += 1
        return web.Response(status=status, headers=headers, body=payload)

    async def _websocket(self, request: web.Request, url: URL) -> web.StreamResponse:
        assert self.http is not None
        try:
            up = await self.http.ws_connect(url.with_scheme("ws"))
        except (aiohttp.ClientError, OSError, TimeoutError):
            _hang_up(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.passed += 1
        pair = (ws, up)
        self.sockets.add(pair)

        async def pump(src: Any, dst: Any) -> None:
            async for msg in src:
                if self.cut is not None:
                    self.dropped += 1
                    continue
                if msg.type == WSMsgType.TEXT:
                    await dst.send_str(msg.data)
                elif msg.type == WSMsgType.BINARY:
                    await dst.send_bytes(msg.data)
                else:
                    break

        tasks = [asyncio.ensure_future(pump(ws, up)), asyncio.ensure_future(pump(up, ws))]
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self.sockets.discard(pair)
            self.lived_through_cut.discard(pair)
            await self._close_pair(ws, up)
        return ws

    def stats(self) -> dict[str, Any]:
        return {"cut": self.cut, "passed": self.passed, "dropped": self.dropped,
                "reset": self.reset, "refused": self.refused, "sockets": len(self.sockets)}


def _loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


# ---------------------------------------------------------------------- control
def control_app(aws: AwsProxy, forward: ForwardProxy) -> web.Application:
    routes = web.RouteTableDef()

    def bad(message: str) -> web.Response:
        return web.json_response({"error": message}, status=400)

    @routes.get("/healthz")
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    @routes.get("/stats")
    async def stats(_: web.Request) -> web.Response:
        return web.json_response({"aws": aws.stats(), "forward": forward.stats()})

    @routes.put("/aws/throttle/{service}")
    async def set_throttle(req: web.Request) -> web.Response:
        try:
            body = await req.json()
            fraction = float(body["fraction"])
            window = body.get("window_s")
            window = None if window is None else float(window)
        except (ValueError, TypeError, KeyError) as exc:
            return bad(f"throttle: {type(exc).__name__}: {exc}")
        if not 0.0 <= fraction <= 1.0 or (window is not None and window <= 0):
            return bad("throttle: fraction must be in [0, 1], window_s > 0")
        service = req.match_info["service"]
        aws.rules[service] = Throttle(fraction, None if window is None
                                      else time.monotonic() + window)
        return web.json_response({service: aws.rules[service].view()})

    @routes.delete("/aws/throttle/{service}")
    async def clear_throttle(req: web.Request) -> web.Response:
        return web.json_response({"cleared": aws.rules.pop(req.match_info["service"], None)
                                  is not None})

    @routes.put("/forward/cut")
    async def set_cut(req: web.Request) -> web.Response:
        try:
            mode = (await req.json()).get("mode", "drop")
        except (ValueError, AttributeError) as exc:
            return bad(f"cut: {exc}")
        if mode not in CUT_MODES:
            return bad(f"cut: mode must be one of {', '.join(CUT_MODES)}")
        forward.set_cut(mode)
        return web.json_response(forward.stats())

    @routes.delete("/forward/cut")
    async def clear_cut(_: web.Request) -> web.Response:
        forward.set_cut(None)
        return web.json_response(forward.stats())

    @routes.delete("/faults")
    async def clear_all(_: web.Request) -> web.Response:
        cleared = len(aws.rules) + (forward.cut is not None)
        aws.rules.clear()
        forward.set_cut(None)
        return web.json_response({"cleared": cleared})

    app = web.Application()
    app.add_routes(routes)
    return app


async def _wait_listening(url: str, stop: asyncio.Event) -> None:
    """Until ``url``'s host:port accepts a connection (or we are told to stop)."""
    target = URL(url)
    while not stop.is_set():
        try:
            _, writer = await asyncio.open_connection(target.host, target.port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        return


async def serve(upstream: str, aws_port: int, forward_port: int, control_port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    aws, forward = AwsProxy(upstream), ForwardProxy()
    await aws.start()
    await forward.start()
    runners = []

    async def site(app: web.Application, port: int) -> None:
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port, reuse_address=True).start()
        runners.append(runner)

    def proxy_app(handler: Any) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", handler)
        return app

    await site(control_app(aws, forward), control_port)
    await site(proxy_app(forward.handle), forward_port)
    await _wait_listening(upstream, stop)  # a client sees "refused" until the endpoint is up
    if not stop.is_set():
        await site(proxy_app(aws.handle), aws_port)
    await stop.wait()
    for runner in reversed(runners):
        await runner.cleanup()
    await forward.close()
    await aws.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m opsconsole.netproxy.http")
    parser.add_argument("--upstream", required=True, help="the AWS endpoint URL (moto)")
    parser.add_argument("--aws-port", type=int, required=True)
    parser.add_argument("--forward-port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    args = parser.parse_args(argv)
    asyncio.run(serve(args.upstream, args.aws_port, args.forward_port, args.control_port))


if __name__ == "__main__":
    main()
