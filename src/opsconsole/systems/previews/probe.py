"""The sessions stack's own status: sessions by status and running edit containers."""

from __future__ import annotations

import aiohttp

from ...core.events import Event
from ...probes.base import Probe
from ...targets.http import ssl_for
from .config import PreviewsTarget
from .events import SessionsSampled


class SessionsProbe(Probe):
    def __init__(self, session: aiohttp.ClientSession, target: PreviewsTarget) -> None:
        self.name = "sessions"
        self.interval = 1.0
        self.session = session
        self.url = str(target.base_url).rstrip("/") + "/api/status"
        self.target = target

    async def sample(self) -> list[Event]:
        async with self.session.get(self.url, ssl=ssl_for(self.target, self.url, "sessions"),
                                    timeout=aiohttp.ClientTimeout(total=self.timeout)) as r:
            r.raise_for_status()
            data = await r.json()
        counts = data.get("counts", {})
        events = data.get("events", {})
        return [SessionsSampled(
            reachable=True, running=int(counts.get("running", 0)),
            desired=int(counts.get("desired", 0)),
            max_capacity=int(counts.get("max_capacity", 0)),
            sessions={k: int(v) for k, v in counts.get("sessions", {}).items()},
            scale_events=int(events.get("scale-up", 0)) + int(events.get("scale-down", 0)))]

    def unreachable(self, why: str) -> list[Event]:
        return [SessionsSampled(reachable=False, reason=why)]
