"""CloudWatch metrics of the stack, batched and published by a background task.

Gauges (last value wins per flush): ActiveSessions, RunningContainers, DesiredCount.
Counts (summed per flush): ScaleUp, ScaleDown, CapacityRefused, ContainerRestarts,
SessionsExpired, SessionsFailed. Dimension: Service=<ECS service name>.
A failed publish is logged and counted; it never stops the stack.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from typing import Any

log = logging.getLogger("sessions.metrics")


class MetricsPublisher:
    def __init__(self, cloudwatch: Any, namespace: str, service: str, interval: float) -> None:
        self.cw = cloudwatch
        self.namespace = namespace
        self.dims = [{"Name": "Service", "Value": service}]
        self.interval = interval
        self.gauges: dict[str, float] = {}
        self.counts: collections.Counter[str] = collections.Counter()
        self.published = 0
        self.failures = 0
        self._dirty = asyncio.Event()

    def gauge(self, name: str, value: float) -> None:
        self.gauges[name] = value
        self._dirty.set()

    def count(self, name: str, n: int = 1) -> None:
        self.counts[name] += n
        self._dirty.set()

    async def flush(self) -> None:
        data = [{"MetricName": k, "Value": float(v), "Unit": "Count", "Dimensions": self.dims}
                for k, v in self.gauges.items()]
        data += [{"MetricName": k, "Value": float(v), "Unit": "Count", "Dimensions": self.dims}
                 for k, v in self.counts.items() if v]
        self.gauges, self.counts = {}, collections.Counter()
        self._dirty.clear()
        for i in range(0, len(data), 500):
            try:
                await self.cw.put_metric_data(Namespace=self.namespace, MetricData=data[i:i + 500])
                self.published += len(data[i:i + 500])
            except Exception as exc:
                self.failures += 1
                log.warning("put_metric_data failed: %s", exc)

    async def run(self) -> None:
        while True:
            await self._dirty.wait()
            await self.flush()
            await asyncio.sleep(self.interval)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.flush()
