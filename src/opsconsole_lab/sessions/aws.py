"""AWS side of the stack: clients (aioboto3 against the lab's endpoint), resource names,
idempotent resource creation, and a meter counting every API call for the cost estimate.

moto gaps this stack fills itself (see the modules named): SES never delivers mail
(``intake``), ECS services never run tasks — moto even reports ``runningCount`` equal
to ``desiredCount`` — (``orchestrator``: every container is one ``run_task`` task, stopped
when it exits, so ``describe_tasks``/``list_tasks`` tell the truth), DynamoDB TTL is
recorded but never deletes.
"""

from __future__ import annotations

import collections
import contextlib
import json
from dataclasses import dataclass
from typing import Any

import aioboto3
import aiohttp
from botocore.config import Config

from .config import StackConfig

#: moto accepts any key pair; this one is not a credential (same value as the lab's).
LAB_AWS_KEY = "testing"
DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem"})
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"})


@dataclass(frozen=True)
class Resources:
    prefix: str
    region: str
    endpoint: str

    @property
    def table(self) -> str:
        return f"{self.prefix}-sessions"

    @property
    def queue(self) -> str:
        return f"{self.prefix}-intake"

    @property
    def dlq(self) -> str:
        return f"{self.prefix}-intake-dlq"

    @property
    def cluster(self) -> str:
        return f"{self.prefix}"

    @property
    def service(self) -> str:
        return "edit"

    @property
    def task_family(self) -> str:
        return f"{self.prefix}-edit"

    @property
    def namespace(self) -> str:
        return "OpsConsole/Sessions"

    @property
    def mail_domain(self) -> str:
        """Verified SES domain users' addresses live in (``<user>@<domain>``)."""
        return f"users.{self.prefix}.lab.invalid"

    @property
    def intake_address(self) -> str:
        return f"hermes@{self.prefix}.lab.invalid"

    def as_dict(self) -> dict[str, str]:
        return {"region": self.region, "endpoint": self.endpoint, "table": self.table,
                "queue": self.queue, "dlq": self.dlq, "cluster": self.cluster,
                "service": self.service, "task_family": self.task_family,
                "namespace": self.namespace, "mail_domain": self.mail_domain,
                "intake_address": self.intake_address}


class UsageMeter:
    """Counts API calls per (service, operation) through botocore's ``before-call`` hook."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()

    def hook(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def summary(self) -> dict[str, float]:
        def total(service: str, ops: frozenset[str] | None = None) -> int:
            return sum(n for key, n in self.calls.items()
                       if key.startswith(service + ".") and
                       (ops is None or key.split(".", 1)[1] in ops))
        # One request unit per call: items here are < 1 KB (writes) and < 4 KB (reads).
        return {"dynamodb_read_units": total("dynamodb", DYNAMODB_READS),
                "dynamodb_write_units": total("dynamodb", DYNAMODB_WRITES),
                "sqs_requests": total("sqs"), "ses_emails": self.calls["ses.SendEmail"],
                "cloudwatch_requests": self.calls["cloudwatch.PutMetricData"],
                "ecs_requests": total("ecs")}


class Aws:
    """Long-lived clients for one stack; use as ``async with Aws(cfg) as aws``."""

    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self.res = Resources(cfg.prefix, cfg.region, cfg.aws_endpoint)
        self.meter = UsageMeter()
        self._session = aioboto3.Session(aws_access_key_id=LAB_AWS_KEY,
                                         aws_secret_access_key=LAB_AWS_KEY,
                                         region_name=cfg.region)
        self._stack = contextlib.AsyncExitStack()
        self.queue_url = self.dlq_url = self.dlq_arn = ""

    async def __aenter__(self) -> Aws:
        # Long polls hold a connection for poll_wait seconds: read timeout must exceed it.
        conf = Config(retries={"mode": "standard", "max_attempts": 3},
                      max_pool_connections=32, connect_timeout=3,
                      read_timeout=self.cfg.poll_wait + 10)
        for name in ("dynamodb", "sqs", "ses", "ecs", "cloudwatch", "ec2"):
            client = await self._stack.enter_async_context(
                self._session.client(name, endpoint_url=self.cfg.aws_endpoint, config=conf))
            client.meta.events.register("before-call", self.meter.hook)
            setattr(self, name, client)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    # typed accessors set in __aenter__
    dynamodb: Any
    sqs: Any
    ses: Any
    ecs: Any
    cloudwatch: Any
    ec2: Any
    subnet = ""  # the awsvpc subnet and security group of the tasks (the default VPC's)
    security_group = ""

    async def ensure_resources(self) -> None:
        """Create whatever is missing; safe to call on every start."""
        await self._ensure_table()
        await self._ensure_queues()
        await self._ensure_ses()
        await self._ensure_ecs()

    async def _ensure_table(self) -> None:
        ddb, table = self.dynamodb, self.res.table
        try:
            await ddb.describe_table(TableName=table)
        except ddb.exceptions.ResourceNotFoundException:
            await self._create_table()
            await ddb.get_waiter("table_exists").wait(TableName=table,
                                                      WaiterConfig={"Delay": 1})
        ttl = await ddb.describe_time_to_live(TableName=table)
        if ttl["TimeToLiveDescription"].get("TimeToLiveStatus") != "ENABLED":
            await ddb.update_time_to_live(TableName=table, TimeToLiveSpecification={
                "Enabled": True, "AttributeName": "expires_at"})

    async def _create_table(self) -> None:
        """Create the sessions table; one that exists already is fine: a create that timed
        out at the client (a slow endpoint) and was retried by botocore may have been
        applied the first time."""
        ddb, table = self.dynamodb, self.res.table
        # it exists: the caller's waiter then confirms it is active
        with contextlib.suppress(ddb.exceptions.ResourceInUseException):
            await ddb.create_table(
                TableName=table, BillingMode="PAY_PER_REQUEST",
                AttributeDefinitions=[{"AttributeName": n, "AttributeType": t} for n, t in
                                      (("session_id", "S"), ("user_id", "S"),
                                       ("created_at", "N"))],
                KeySchema=[{"AttributeName": "session_id", "KeyType": "HASH"}],
                GlobalSecondaryIndexes=[{
                    "IndexName": "by_user",
                    "KeySchema": [{"AttributeName": "user_id", "KeyType": "HASH"},
                                  {"AttributeName": "created_at", "KeyType": "RANGE"}],
                    "Projection": {"ProjectionType": "ALL"}}])

    async def _ensure_queues(self) -> None:
        sqs = self.sqs
        self.dlq_url = (await sqs.create_queue(QueueName=self.res.dlq))["QueueUrl"]
        attrs = await sqs.get_queue_attributes(QueueUrl=self.dlq_url, AttributeNames=["QueueArn"])
        self.dlq_arn = attrs["Attributes"]["QueueArn"]
        # Hermes moves a message to the DLQ itself on its last delivery; the redrive policy
        # is the safety net for a message whose handling crashes every time.
        redrive = json.dumps({"deadLetterTargetArn": self.dlq_arn,
                              "maxReceiveCount": str(self.cfg.max_receives + 1)})
        self.queue_url = (await sqs.create_queue(QueueName=self.res.queue, Attributes={
            "VisibilityTimeout": str(self.cfg.visibility_timeout),
            "RedrivePolicy": redrive}))["QueueUrl"]

    async def _ensure_ses(self) -> None:
        await self.ses.verify_domain_identity(Domain=self.res.mail_domain)
        await self.ses.verify_email_identity(EmailAddress=self.res.intake_address)

    async def _hold_tasks_running(self) -> None:
        """moto walks a task from RUNNING to STOPPED by itself, one step per describe
        (its default ``ecs::task`` transition); here a task stops only when someone stops
        it. moto's state-manager API; an endpoint without it (not moto) is left alone."""
        url = self.cfg.aws_endpoint.rstrip("/") + "/moto-api/state-manager/set-transition"
        body = {"model_name": "ecs::task",
                "transition": {"progression": "manual", "times": 2**31}}
        with contextlib.suppress(aiohttp.ClientError, TimeoutError):
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as http, \
                    http.post(url, json=body) as r:
                await r.read()

    async def _ensure_ecs(self) -> None:
        ecs, res = self.ecs, self.res
        await self._hold_tasks_running()
        subnets = (await self.ec2.describe_subnets(Filters=[
            {"Name": "default-for-az", "Values": ["true"]}]))["Subnets"]
        self.subnet = subnets[0]["SubnetId"] if subnets else ""
        groups = (await self.ec2.describe_security_groups(Filters=[
            {"Name": "group-name", "Values": ["default"]}]))["SecurityGroups"]
        self.security_group = groups[0]["GroupId"] if groups else ""
        await ecs.create_cluster(clusterName=res.cluster)
        await ecs.register_task_definition(
            family=res.task_family, requiresCompatibilities=["FARGATE"], networkMode="awsvpc",
            cpu=str(int(self.cfg.task_vcpu * 1024)),
            memory=str(int(self.cfg.task_memory_gb * 1024)),
            containerDefinitions=[{"name": "edit", "image": "opsconsole/edit-container:lab",
                                   "essential": True,
                                   # moto's run_task needs the container's share too
                                   "cpu": int(self.cfg.task_vcpu * 1024),
                                   "memory": int(self.cfg.task_memory_gb * 1024),
                                   "portMappings": [{"containerPort": 8080}]}])
        found = await ecs.describe_services(cluster=res.cluster, services=[res.service])
        if not [s for s in found.get("services", []) if s.get("status") == "ACTIVE"]:
            await ecs.create_service(cluster=res.cluster, serviceName=res.service,
                                     taskDefinition=res.task_family, desiredCount=0,
                                     launchType="FARGATE")

    async def ecs_desired(self) -> int:
        found = await self.ecs.describe_services(cluster=self.res.cluster,
                                                 services=[self.res.service])
        return int(found["services"][0]["desiredCount"])

    async def run_task(self, session_id: str) -> str:
        """One ECS task for a session's container: moto runs nothing, so the task is the
        record of the local process (``startedBy`` the session, ``group`` the service's,
        as ECS names a service's tasks). Its ARN is the container's identity on ECS."""
        r = await self.ecs.run_task(
            cluster=self.res.cluster, taskDefinition=self.res.task_family, count=1,
            launchType="FARGATE", startedBy=session_id, group=f"service:{self.res.service}",
            networkConfiguration={"awsvpcConfiguration": {
                "subnets": [self.subnet], "securityGroups": [self.security_group],
                "assignPublicIp": "DISABLED"}},
            tags=[{"key": "session", "value": session_id}])
        return str(r["tasks"][0]["taskArn"])

    async def stop_task(self, arn: str, reason: str) -> None:
        await self.ecs.stop_task(cluster=self.res.cluster, task=arn, reason=reason[:255])

    async def stopped_tasks(self, arns: list[str]) -> dict[str, str]:
        """Of ``arns``, the tasks ECS reports stopped (any client may stop one), with the
        reason given."""
        out: dict[str, str] = {}
        for i in range(0, len(arns), 100):
            r = await self.ecs.describe_tasks(cluster=self.res.cluster, tasks=arns[i:i + 100])
            for t in r.get("tasks", []):
                if t.get("lastStatus") == "STOPPED" or t.get("desiredStatus") == "STOPPED":
                    out[t["taskArn"]] = str(t.get("stoppedReason", ""))
        return out

    async def set_ecs_desired(self, n: int) -> None:
        await self.ecs.update_service(cluster=self.res.cluster, service=self.res.service,
                                      desiredCount=n)
