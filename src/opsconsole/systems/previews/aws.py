"""The previews stack as its AWS account shows it: the pack's own reads (and its own
cleanup), with the resource names of ``[previews]`` and the account of ``[aws]``.

ECS ``describe_services`` / ``list_tasks`` / ``describe_tasks`` for the edit containers,
DynamoDB ``get_item`` for a session's status and TTL, SQS ``get_queue_attributes`` for the
intake depth, CloudWatch ``get_metric_statistics`` for what the stack publishes. A name the
inventory does not give is :class:`Missing` (the check reports ``unknown`` with it). Every
call is counted (``calls``: ``service.Operation`` → n), so the pack knows its own usage.
"""

from __future__ import annotations

import collections
import contextlib
import datetime as dt
import time
from decimal import Decimal
from typing import Any

from ...targets.aws import aws_session
from .config import PreviewsTarget
from .usage import CallMeter

#: the states of a session item (``status``) that still hold a container
LIVE = ("pending", "starting", "active")


class Missing(LookupError):
    """The inventory lacks what a read needs; the message is the ``unknown`` reason."""


def _plain(av: dict[str, Any]) -> Any:
    """One DynamoDB attribute value as Python (the types a sessions item uses)."""
    kind, value = next(iter(av.items()))
    if kind == "N":
        n = Decimal(value)
        return int(n) if n == n.to_integral_value() else float(n)
    if kind in ("SS", "NS"):
        return sorted(value)
    if kind == "NULL":
        return None
    if kind == "L":
        return [_plain(v) for v in value]
    if kind == "M":
        return {k: _plain(v) for k, v in value.items()}
    return value


class PreviewsAws:
    """Clients for one scenario; ``async with PreviewsAws(run_inventory, credentials)``."""

    def __init__(self, target: PreviewsTarget, aws: Any, credentials: dict[str, str] | None
                 ) -> None:
        self.target = target
        self.aws = aws
        self.credentials = credentials
        self.calls: collections.Counter[str] = collections.Counter()
        self.meter = CallMeter()  # the pack's own billable usage (the honest cost)
        self._stack = contextlib.AsyncExitStack()
        self._clients: dict[str, Any] = {}
        self._queue_url: str | None = None

    async def __aenter__(self) -> PreviewsAws:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    def _count(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    async def client(self, name: str) -> Any:
        if self.aws is None:
            raise Missing("the inventory has no [aws] (the account the stack runs in)")
        if name not in self._clients:
            session = aws_session(self.aws, self.credentials)
            c = await self._stack.enter_async_context(
                session.client(name, endpoint_url=self.aws.endpoint_url))
            c.meta.events.register("before-call", self._count)
            self.meter.attach(c)
            self._clients[name] = c
        return self._clients[name]

    def _need(self, key: str) -> Any:
        value = getattr(self.target, key)
        if not value:
            raise Missing(f"the inventory has no [previews] {key}")
        return value

    # --------------------------------------------------------------------- ECS
    async def services(self) -> dict[str, dict[str, int]]:
        """``describe_services``: each named service's running/desired/pending counts."""
        cluster, names = self._need("cluster"), self._need("services")
        ecs = await self.client("ecs")
        r = await ecs.describe_services(cluster=cluster, services=names)
        found = {s["serviceName"]: {"running": int(s.get("runningCount", 0)),
                                    "desired": int(s.get("desiredCount", 0)),
                                    "pending": int(s.get("pendingCount", 0))}
                 for s in r.get("services", [])}
        absent = [n for n in names if n not in found]
        if absent:
            raise Missing(f"ECS cluster {cluster} has no service {', '.join(absent)}")
        return found

    async def task_arns(self, desired_status: str = "RUNNING") -> list[str]:
        """Every task ARN of the cluster with ``desired_status`` (``list_tasks``, paged;
        ECS keeps a STOPPED task listed for about an hour after it stopped)."""
        cluster = self._need("cluster")
        ecs = await self.client("ecs")
        arns: list[str] = []
        token: str | None = None
        while True:
            kw = {"nextToken": token} if token else {}
            page = await ecs.list_tasks(cluster=cluster, desiredStatus=desired_status, **kw)
            arns += page.get("taskArns", [])
            token = page.get("nextToken")
            if not token:
                break
        return arns

    def _services_own(self, task: dict[str, Any]) -> bool:
        """The task is one of the services' (ECS names a service's tasks
        ``group: service:<name>``)."""
        return task.get("group") in {f"service:{n}" for n in self._need("services")}

    async def running_tasks(self) -> dict[str, dict[str, Any]]:
        """The services' RUNNING tasks by ARN (``list_tasks`` + ``describe_tasks``)."""
        arns = await self.task_arns("RUNNING")
        return {t["taskArn"]: t for t in await self.tasks(arns) if self._services_own(t)
                and t.get("desiredStatus") == "RUNNING"}

    async def stopped_tasks(self, arns: list[str]) -> list[dict[str, Any]]:
        """Those of ``arns`` (STOPPED ARNs) that were the services' tasks, described."""
        return [t for t in await self.tasks(arns) if self._services_own(t)]

    async def tasks(self, arns: list[str]) -> list[dict[str, Any]]:
        if not arns:
            return []
        cluster = self._need("cluster")
        ecs = await self.client("ecs")
        out: list[dict[str, Any]] = []
        for i in range(0, len(arns), 100):
            out += (await ecs.describe_tasks(cluster=cluster, tasks=arns[i:i + 100]))["tasks"]
        return out

    async def task(self, arn: str) -> dict[str, Any] | None:
        found = await self.tasks([arn])
        return found[0] if found else None

    async def stop_task(self, arn: str, reason: str) -> None:
        ecs = await self.client("ecs")
        await ecs.stop_task(cluster=self._need("cluster"), task=arn, reason=reason[:255])

    # ---------------------------------------------------------------- DynamoDB
    async def session(self, session_id: str) -> dict[str, Any] | None:
        """The session's item (consistent read), None when the table has none."""
        ddb = await self.client("dynamodb")
        r = await ddb.get_item(TableName=self._need("table"),
                               Key={"session_id": {"S": session_id}}, ConsistentRead=True)
        return {k: _plain(v) for k, v in r["Item"].items()} if "Item" in r else None

    async def end_session(self, session_id: str, reason: str) -> bool:
        """Mark one of the pack's own sessions ended (only from a live state); False when
        it had ended already."""
        ddb = await self.client("dynamodb")
        now = time.time()
        try:
            await ddb.update_item(
                TableName=self._need("table"), Key={"session_id": {"S": session_id}},
                UpdateExpression="SET #s = :to, end_reason = :why, ended_at = :now, "
                                 "updated_at = :now",
                ConditionExpression="#s IN (:p, :st, :a)",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":to": {"S": "expired"}, ":why": {"S": reason},
                                           ":now": {"N": f"{now:.3f}"}, ":p": {"S": "pending"},
                                           ":st": {"S": "starting"}, ":a": {"S": "active"}})
        except ddb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    # --------------------------------------------------------------------- SQS
    async def queue_depth(self) -> dict[str, int]:
        """``visible`` and ``in_flight`` messages of the intake queue."""
        sqs = await self.client("sqs")
        if self._queue_url is None:
            queue = self._need("queue")
            self._queue_url = queue if queue.startswith(("https://", "http://")) else \
                (await sqs.get_queue_url(QueueName=queue))["QueueUrl"]
        a = (await sqs.get_queue_attributes(
            QueueUrl=self._queue_url, AttributeNames=["ApproximateNumberOfMessages",
                                                      "ApproximateNumberOfMessagesNotVisible"]
        ))["Attributes"]
        return {"visible": int(a["ApproximateNumberOfMessages"]),
                "in_flight": int(a["ApproximateNumberOfMessagesNotVisible"])}

    # -------------------------------------------------------------- CloudWatch
    async def metric_max(self, name: str, since: float) -> float | None:
        """The largest value of the stack's metric ``name`` (dimension ``Service`` = the
        first service) since ``since`` (epoch s); None without datapoints."""
        namespace = self._need("metrics_namespace")
        service = self._need("services")[0]
        cw = await self.client("cloudwatch")
        r = await cw.get_metric_statistics(
            Namespace=namespace, MetricName=name,
            Dimensions=[{"Name": "Service", "Value": service}],
            StartTime=dt.datetime.fromtimestamp(since - 60, dt.UTC),
            EndTime=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=60), Period=60,
            Statistics=["Maximum"])
        points = [p["Maximum"] for p in r.get("Datapoints", [])]
        return max(points) if points else None
