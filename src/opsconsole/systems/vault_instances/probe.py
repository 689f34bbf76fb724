"""Probe for vault instances: EC2 instances found by tag (aioboto3, moto in the lab)."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from ...core.events import Event, ProbeFailed
from ...probes.base import Probe
from ...targets.aws import aws_session
from ...targets.http import ssl_for
from .config import ProvisionerTarget
from .events import InstanceSampled

if TYPE_CHECKING:
    from ..aws.config import AwsTarget  # the [aws] section, read here (no import at run time)


def _clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(ts)) if ts else ""


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


class InstanceProbe(Probe):
    interval = 3.0
    timeout = 10.0
    max_backoff = 15.0

    def __init__(self, aws: AwsTarget, credentials: dict[str, str] | None = None,
                 provisioner: ProvisionerTarget | None = None,
                 http: aiohttp.ClientSession | None = None) -> None:
        self.name = "aws:instances"
        self.aws = aws
        self.provisioner = provisioner
        self.http = http
        self.credentials = credentials or {}
        self._stack = contextlib.AsyncExitStack()
        self._ec2: Any = None

    async def open(self) -> None:
        session = aws_session(self.aws, self.credentials)
        self._ec2 = await self._stack.enter_async_context(
            session.client("ec2", endpoint_url=self.aws.endpoint_url))

    async def close(self) -> None:
        await self._stack.aclose()

    async def sample(self) -> list[Event]:
        flt = [{"Name": f"tag:{self.aws.instance_tag_key}",
                "Values": [self.aws.instance_tag_value]}]
        events: list[Event] = []
        health = await self._instance_health()
        paginator = self._ec2.get_paginator("describe_instances")
        async for page in paginator.paginate(Filters=flt):
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    tags = _tags(inst)
                    own = health.get(inst["InstanceId"], {})
                    hub = own.get("hub")
                    events.append(InstanceSampled(
                        instance_id=inst["InstanceId"], owner=tags.get("owner", "?"),
                        state=inst.get("State", {}).get("Name", "?"),
                        instance_type=inst.get("InstanceType", ""),
                        arch=inst.get("Architecture", ""),
                        private_ip=inst.get("PrivateIpAddress", ""),
                        local_nats=own.get("local_nats", "—"),
                        central_link=(f"→{hub}" if hub else own.get("central_nats", "—")),
                        manager=own.get("manager", "—"),
                        last_event=_clock(own.get("last_event_at"))))
        return events

    async def _instance_health(self) -> dict[str, dict[str, Any]]:
        """Each instance's own health from the provisioning service, when configured."""
        p = self.provisioner
        if p is None or p.admin_token is None or self.http is None:
            return {}
        try:
            url = f"{str(p.base_url).rstrip('/')}/admin/instances"
            headers = {"Authorization": f"Bearer {p.admin_token.resolve()}"}
            async with self.http.get(url, ssl=ssl_for(p, url, "provisioner"), headers=headers,
                                     timeout=aiohttp.ClientTimeout(total=5)) as r:
                rows = await r.json(content_type=None) if r.status == 200 else []
        except (aiohttp.ClientError, TimeoutError, ValueError):
            return {}  # EC2 rows still show; their own health reads "—"
        return {row["instance_id"]: row for row in rows if isinstance(row, dict)}

    def unreachable(self, why: str) -> list[Event]:
        return [ProbeFailed(probe=self.name, reason=f"unreachable: {why}")]
