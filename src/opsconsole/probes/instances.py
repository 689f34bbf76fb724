"""Probe for vault instances: EC2 instances found by tag (aioboto3, moto in the lab)."""

from __future__ import annotations

import contextlib
from typing import Any

import aioboto3

from ..config import AwsTarget
from ..core.events import Event, InstanceSampled, ProbeFailed
from .base import Probe


def _tags(instance: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in instance.get("Tags", [])}


class InstanceProbe(Probe):
    interval = 3.0
    timeout = 10.0
    max_backoff = 15.0

    def __init__(self, aws: AwsTarget, credentials: dict[str, str] | None = None) -> None:
        self.name = "aws:instances"
        self.aws = aws
        self.credentials = credentials or {}
        self._stack = contextlib.AsyncExitStack()
        self._ec2: Any = None

    async def open(self) -> None:
        session = aioboto3.Session(profile_name=self.aws.profile, region_name=self.aws.region,
                                   **self.credentials)
        self._ec2 = await self._stack.enter_async_context(
            session.client("ec2", endpoint_url=self.aws.endpoint_url))

    async def close(self) -> None:
        await self._stack.aclose()

    async def sample(self) -> list[Event]:
        flt = [{"Name": f"tag:{self.aws.instance_tag_key}",
                "Values": [self.aws.instance_tag_value]}]
        events: list[Event] = []
        paginator = self._ec2.get_paginator("describe_instances")
        async for page in paginator.paginate(Filters=flt):
            for reservation in page.get("Reservations", []):
                for inst in reservation.get("Instances", []):
                    tags = _tags(inst)
                    events.append(InstanceSampled(
                        instance_id=inst["InstanceId"], owner=tags.get("owner", "?"),
                        state=inst.get("State", {}).get("Name", "?"),
                        instance_type=inst.get("InstanceType", ""),
                        arch=inst.get("Architecture", ""),
                        private_ip=inst.get("PrivateIpAddress", "")))
        return events

    def unreachable(self, why: str) -> list[Event]:
        return [ProbeFailed(probe=self.name, reason=f"unreachable: {why}")]
