"""What a scenario needs around ``previews.router-cut`` (the lab's HTTP fault proxy cuts
the network between the previews router and its containers): whether it can run here,
the route's status through the router, and the recovery time after the heal."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from ...faults.lab_kinds import ROUTER_CUT, ROUTER_NODE

__all__ = ["ROUTER_CUT", "ROUTER_NODE", "route_status", "router_cut_available",
           "wait_route_recovered"]


def router_cut_available(run: Any) -> str | None:
    """None when ``previews.router-cut`` can run (the embedded lab, whose router reaches
    its containers through the HTTP fault proxy), else the reason it cannot."""
    lab = getattr(getattr(run, "session", None), "lab", None)
    if lab is None:
        return ("the router ↔ container network can only be cut on the embedded lab "
                "(its router reaches containers through the lab's HTTP fault proxy)")
    topo = lab.topology()
    if topo is None or not getattr(topo, "http_proxy_url", None):
        return "this lab has no HTTP fault proxy (started by an older opsconsole)"
    return None


async def route_status(http: aiohttp.ClientSession, base_url: str, session_id: str,
                       timeout: float = 15.0) -> int:
    """HTTP status of ``GET /session/<id>/health`` through the router; 0 when the router
    itself did not answer in ``timeout`` seconds."""
    url = f"{base_url.rstrip('/')}/session/{session_id}/health"
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
            await resp.read()
            return resp.status
    except (aiohttp.ClientError, TimeoutError, OSError):
        return 0


async def wait_route_recovered(http: aiohttp.ClientSession, base_url: str, session_id: str,
                               timeout: float = 60.0, interval: float = 0.05) -> float | None:
    """Seconds from the call (make it right after the heal) until the session's health
    answers 200 through the router again; None if it did not within ``timeout``."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        left = timeout - (time.monotonic() - started)
        if await route_status(http, base_url, session_id, timeout=max(0.5, min(left, 12.0))) \
                == 200:
            return time.monotonic() - started
        await asyncio.sleep(interval)
    return None
