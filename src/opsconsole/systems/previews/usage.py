"""What a previews run uses on AWS, observed by the pack itself (the honest cost).

Two sources, neither of them the stack's own report:

- :class:`CallMeter`: botocore event hooks on the AWS clients the pack creates count every
  call (``service.Operation``); DynamoDB calls ask for ``ReturnConsumedCapacity=TOTAL`` and
  the units the answer reports are summed (1 unit per call when an answer reports none: the
  on-demand minimum of a request under 4 KB read / 1 KB written).
- :class:`TaskClock`: the edit services' ECS tasks, sampled during the run
  (``list_tasks`` + ``describe_tasks``): a task's lifetime is ECS's ``startedAt`` /
  ``stoppedAt`` when ECS gives them (AWS does), else when the pack first saw it RUNNING and
  first saw it stopped or gone (moto records no task times; resolution: the interval).
  A task that started and stopped between two samples is found at the end among the
  cluster's STOPPED tasks that were not stopped when sampling began (ECS lists a stopped
  task for about an hour); without ECS times it counts from the sample before.

:func:`fargate_usage` turns the lifetimes into billed task-seconds inside the run's window
with Fargate's one-minute minimum per task, the same accounting as a cumulative counter
read before and after the run.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DYNAMODB_READS = frozenset({"GetItem", "Query", "Scan", "BatchGetItem", "TransactGetItems"})
DYNAMODB_WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem",
                             "TransactWriteItems"})
SES_SENDS = frozenset({"SendEmail", "SendRawEmail", "SendTemplatedEmail"})
FARGATE_MINIMUM_S = 60.0  # Fargate bills at least one minute per task


class CallMeter:
    """Counts the calls of every client it is attached to (and DynamoDB's units)."""

    def __init__(self) -> None:
        self.calls: collections.Counter[str] = collections.Counter()
        self.read_units = 0.0
        self.write_units = 0.0
        self.unit_answers = 0  # DynamoDB answers that reported ConsumedCapacity

    def attach(self, client: Any) -> None:
        events = client.meta.events
        events.register("provide-client-params.dynamodb", self._ask_capacity)
        events.register("before-call", self._count)
        events.register("after-call.dynamodb", self._units)

    @staticmethod
    def _ask_capacity(params: dict[str, Any], model: Any = None, **_: Any) -> None:
        if model is not None and model.name in DYNAMODB_READS | DYNAMODB_WRITES:
            params.setdefault("ReturnConsumedCapacity", "TOTAL")

    def _count(self, model: Any = None, **_: Any) -> None:
        if model is not None:
            self.calls[f"{model.service_model.service_name}.{model.name}"] += 1

    def _units(self, model: Any = None, parsed: Any = None, **_: Any) -> None:
        if model is None or not isinstance(parsed, dict):
            return
        op = model.name
        found = consumed_units(parsed.get("ConsumedCapacity"))
        if found is None:
            units = 1.0 if op in DYNAMODB_READS | DYNAMODB_WRITES else 0.0
        else:
            units = found
            self.unit_answers += 1
        if op in DYNAMODB_READS:
            self.read_units += units
        elif op in DYNAMODB_WRITES:
            self.write_units += units

    def usage(self) -> dict[str, Any]:
        """The pack's own billable usage, keyed like the stack's counters."""
        def total(service: str, ops: frozenset[str] | None = None) -> int:
            return sum(n for key, n in self.calls.items()
                       if key.split(".", 1)[0] == service
                       and (ops is None or key.split(".", 1)[1] in ops))

        return {"dynamodb_read_units": round(self.read_units, 3),
                "dynamodb_write_units": round(self.write_units, 3),
                "sqs_requests": total("sqs"), "ses_emails": total("ses", SES_SENDS),
                # AWS prices CloudWatch API requests (Get/PutMetric*, dashboards…) alike
                "cloudwatch_requests": total("cloudwatch")}


def consumed_units(found: Any) -> float | None:
    """``CapacityUnits`` of a ConsumedCapacity answer (a dict, or a list for batches)."""
    if isinstance(found, dict):
        found = [found]
    if not isinstance(found, list) or not found:
        return None
    units = [float(c["CapacityUnits"]) for c in found
             if isinstance(c, dict) and isinstance(c.get("CapacityUnits"), int | float)]
    return sum(units) if units else None


def _epoch(value: Any) -> float | None:
    if isinstance(value, dt.datetime):
        return value.timestamp()
    if isinstance(value, int | float):
        return float(value)
    return None


@dataclass
class TaskSpan:
    """One ECS task's lifetime as the pack saw it."""

    arn: str
    started: float | None = None
    stopped: float | None = None
    started_from_ecs: bool = False
    stopped_from_ecs: bool = False
    running_at_start: bool = False  # already RUNNING at the first sample
    between_samples: bool = False  # started and stopped between two samples
    vcpu: float | None = None
    memory_gb: float | None = None
    task_definition: str = ""


def _size(task: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """vCPU and GB of a task (its ``cpu`` units and ``memory`` MiB, as ECS reports)."""
    def num(key: str) -> float | None:
        try:
            return float(task[key]) / 1024
        except (KeyError, TypeError, ValueError):
            return None

    return num("cpu"), num("memory")


class TaskClock:
    """Samples the edit services' tasks while a run goes on.

    ``aws`` is the pack's AWS reader (``running_tasks()`` → {arn: task}, ``tasks(arns)``);
    a sampling error is kept in :attr:`error` (the observation is then incomplete)."""

    def __init__(self, aws: Any, interval: float = 1.0) -> None:
        self.aws = aws
        self.interval = interval
        self.spans: dict[str, TaskSpan] = {}
        self.samples = 0
        self.last_sample_at: float | None = None
        self.stopped_at_start: set[str] = set()
        self.error = ""
        self._task: asyncio.Task[None] | None = None

    def _update(self, task: Mapping[str, Any], now: float, first: bool) -> None:
        arn = str(task.get("taskArn", ""))
        if not arn:
            return
        span = self.spans.get(arn)
        if span is None:
            span = self.spans[arn] = TaskSpan(arn, running_at_start=first)
        started = _epoch(task.get("startedAt"))
        if started is not None:
            span.started, span.started_from_ecs = started, True
        elif span.started is None and not span.running_at_start:
            span.started = now
        stopped = _epoch(task.get("stoppedAt"))
        if stopped is not None:
            span.stopped, span.stopped_from_ecs = stopped, True
        elif span.stopped is None and (task.get("lastStatus") == "STOPPED"
                                       or task.get("desiredStatus") == "STOPPED"):
            span.stopped = now
        vcpu, mem = _size(task)
        span.vcpu, span.memory_gb = vcpu or span.vcpu, mem or span.memory_gb
        span.task_definition = str(task.get("taskDefinitionArn") or span.task_definition)

    async def sample(self) -> None:
        now = time.time()
        first = self.samples == 0
        running = await self.aws.running_tasks()
        for task in running.values():
            self._update(task, now, first)
        gone = [a for a, s in self.spans.items() if s.stopped is None and a not in running]
        if gone:
            seen = {str(t.get("taskArn")): t for t in await self.aws.tasks(gone)}
            for arn in gone:
                task = seen.get(arn) or {"taskArn": arn, "lastStatus": "STOPPED"}
                if task.get("lastStatus") == "RUNNING" and task.get("desiredStatus") != \
                        "STOPPED":
                    task = {**task, "lastStatus": "STOPPED"}  # no longer the services'
                self._update(task, now, False)
        self.samples += 1
        self.last_sample_at = now

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.sample()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noted: the observation is then incomplete
                self.error = f"{type(exc).__name__}: {exc}"[:200]

    async def start(self) -> None:
        """The first sample (what already runs; what had already stopped), then one
        every ``interval``."""
        self.stopped_at_start = set(await self.aws.task_arns("STOPPED"))
        await self.sample()
        self._task = asyncio.create_task(self._loop(), name="previews-task-clock")

    async def stop(self) -> None:
        """Stop sampling after one last sample."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            before = self.last_sample_at
            await self.sample()
            await self._unseen(before)
            await self._sizes()
        except Exception as exc:
            self.error = self.error or f"{type(exc).__name__}: {exc}"[:200]

    async def _unseen(self, before: float | None) -> None:
        """The services' tasks that started and stopped between two samples: STOPPED now,
        not stopped at the start, never sampled."""
        new = [a for a in await self.aws.task_arns("STOPPED")
               if a not in self.stopped_at_start and a not in self.spans]
        now = time.time()
        for task in await self.aws.stopped_tasks(new):
            arn = str(task.get("taskArn", ""))
            span = self.spans[arn] = TaskSpan(arn, between_samples=True)
            if _epoch(task.get("startedAt")) is None:
                span.started = before if before is not None else now
            self._update(task, now, False)

    async def _sizes(self) -> None:
        """The size of tasks ECS described without one, from their task definition."""
        unsized = {s.task_definition for s in self.spans.values()
                   if s.task_definition and (s.vcpu is None or s.memory_gb is None)}
        if not unsized:
            return
        ecs = await self.aws.client("ecs")
        for arn in unsized:
            td = (await ecs.describe_task_definition(taskDefinition=arn))["taskDefinition"]
            vcpu, mem = _size(td)
            for span in self.spans.values():
                if span.task_definition == arn:
                    span.vcpu, span.memory_gb = span.vcpu or vcpu, span.memory_gb or mem


def _billed_until(span: TaskSpan, t: float, started: float) -> float:
    """Billed seconds of ``span`` accrued by time ``t`` (one-minute minimum once it ran)."""
    if t <= started:
        return 0.0
    end = min(t, span.stopped) if span.stopped is not None else t
    return max(FARGATE_MINIMUM_S, end - started)


def fargate_usage(spans: Iterable[TaskSpan], since: float, until: float,
                  default_vcpu: float, default_memory_gb: float) -> dict[str, Any]:
    """Fargate usage inside [since, until], keyed like the stack's counters.

    A task already running when the run began, whose start ECS does not give, counts from
    ``since`` on (its minute was billed before the run): said in ``started_before_run``.
    """
    billed = task_s = vcpu_s = gb_s = 0.0
    counted = from_ecs = before = sized = unseen = 0
    for span in spans:
        started = span.started
        if started is None:
            if not span.running_at_start:
                continue
            started = since - FARGATE_MINIMUM_S
            before += 1
        end = span.stopped if span.stopped is not None else until
        if end < since or started > until:
            continue
        seconds = _billed_until(span, until, started) - _billed_until(span, since, started)
        counted += 1
        unseen += span.between_samples
        from_ecs += span.started_from_ecs
        sized += span.vcpu is not None
        billed += seconds
        task_s += max(0.0, min(end, until) - max(started, since))
        vcpu_s += seconds * (span.vcpu or default_vcpu)
        gb_s += seconds * (span.memory_gb or default_memory_gb)
    return {"fargate_billed_seconds": round(billed, 3),
            "fargate_task_seconds": round(task_s, 3),
            "task_vcpu": round(vcpu_s / billed, 4) if billed else default_vcpu,
            "task_memory_gb": round(gb_s / billed, 4) if billed else default_memory_gb,
            "tasks": counted, "times_from_ecs": from_ecs, "started_before_run": before,
            "between_samples": unseen, "sized_by_ecs": sized}
