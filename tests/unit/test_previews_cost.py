"""Honest cost (issue 18, item 6): the pack's own observation of a run's AWS usage (its
clients' calls, ECS task lifetimes) and the stack's own estimate held against it, ±10 %.
Pure functions; negative controls: an estimate 20 % off fails, missing usage is unknown
(never a $0 pass), tasks the stack bills but ECS never showed fail."""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace

import botocore.session
import pytest

from opsconsole.systems.previews.cost import (
    STACK_COUNTERS,
    cost_predictability,
    load_prices,
    observed_cost,
)
from opsconsole.systems.previews.packs.sessions import cost_outcome
from opsconsole.systems.previews.usage import (
    CallMeter,
    TaskClock,
    TaskSpan,
    consumed_units,
    fargate_usage,
)

T0 = 1_000_000.0


def _stack(billed: float, **over: float) -> dict[str, float]:
    return {**{k: 0.0 for k in STACK_COUNTERS}, "fargate_billed_seconds": billed,
            "fargate_task_seconds": billed, "task_vcpu": 0.25, "task_memory_gb": 0.5, **over}


def _observed(billed_s: float, calls: dict[str, float] | None = None) -> dict:
    spans = [TaskSpan("arn:1", started=T0 + 1, stopped=T0 + 1 + billed_s, vcpu=0.25,
                      memory_gb=0.5)]
    return observed_cost(fargate_usage(spans, T0, T0 + 1000, 0.25, 0.5), calls or {})


def test_the_stacks_estimate_within_ten_percent_passes_and_twenty_off_fails() -> None:
    observed = _observed(100.0)
    status, ev = cost_predictability(observed, "", _stack(0), _stack(105.0))
    assert status == "pass" and ev["off_pct"] == 5.0 and ev["tolerance_pct"] == 10.0
    assert ev["compared"] == ["fargate_vcpu", "fargate_memory"] and ev["observed_usd"] > 0
    status, ev = cost_predictability(observed, "", _stack(0), _stack(120.0))  # control
    assert status == "fail" and ev["off_pct"] == 20.0
    status, ev = cost_predictability(observed, "", _stack(0), _stack(80.0))
    assert status == "fail" and ev["off_pct"] == -20.0


def test_missing_usage_is_unknown_never_a_zero_dollar_pass() -> None:
    status, ev = cost_predictability(None, "the inventory has no [aws]", _stack(0),
                                     _stack(60))
    assert status == "unknown" and "no [aws]" in ev["reason"]
    status, ev = cost_predictability(_observed(60), "", None, None)
    assert status == "unknown" and "usage_url" in ev["reason"]
    assert ev["observed"]["total_usd"] > 0  # what was seen is still shown
    partial = _stack(60)
    del partial["fargate_billed_seconds"], partial["fargate_task_seconds"]
    status, ev = cost_predictability(_observed(60), "", _stack(0), partial)
    assert status == "unknown" and "fargate_billed_seconds" in ev["reason"]
    nothing = observed_cost(fargate_usage([], T0, T0 + 10, 0.25, 0.5), {})
    status, ev = cost_predictability(nothing, "", _stack(0), _stack(0))
    assert status == "unknown" and "nothing billable" in ev["reason"]


def test_tasks_the_stack_bills_but_ecs_never_showed_fail() -> None:
    nothing = observed_cost(fargate_usage([], T0, T0 + 10, 0.25, 0.5), {})
    status, ev = cost_predictability(nothing, "", _stack(0), _stack(60))
    assert status == "fail" and "never showed" in ev["reason"]
    status, ev = cost_predictability(_observed(60), "", _stack(10, sqs_requests=5),
                                     _stack(70, sqs_requests=1))
    assert status == "fail" and "backwards: sqs_requests" in ev["reason"]


def test_cost_outcome_is_the_predictability_verdict() -> None:
    assert cost_outcome(_stack(0), _stack(60), _observed(30))[0] == "pass"  # both 60 s min
    assert cost_outcome(_stack(0), _stack(60), None, "no cluster")[1]["reason"].endswith(
        "no cluster")


def test_fargate_usage_bills_a_minute_minimum_inside_the_window() -> None:
    spans = [TaskSpan("a", started=T0 + 10, stopped=T0 + 20),  # 10 s → billed 60
             TaskSpan("b", started=T0 + 10, stopped=T0 + 110, vcpu=1.0, memory_gb=2.0),
             TaskSpan("c", started=T0 + 90),  # still running at the end (until = T0+100)
             TaskSpan("d", started=T0 - 500, stopped=T0 - 400),  # before the run
             TaskSpan("e", running_at_start=True)]  # running before, start unknown
    u = fargate_usage(spans, T0, T0 + 100, 0.25, 0.5)
    # a: 60; b: 90 (to the window's end); c: 60 (minimum); e: 100 (counted from since)
    assert u["fargate_billed_seconds"] == 310.0 and u["tasks"] == 4
    assert u["started_before_run"] == 1
    assert u["task_vcpu"] == pytest.approx((60 * .25 + 90 * 1 + 60 * .25 + 100 * .25) / 310,
                                           abs=1e-4)
    # a cumulative counter read before and after gives the same as the window's sum
    whole = fargate_usage(spans[:3], T0 - 1000, T0 + 100, 0.25, 0.5)
    first = fargate_usage(spans[:3], T0 - 1000, T0 + 50, 0.25, 0.5)
    rest = fargate_usage(spans[:3], T0 + 50, T0 + 100, 0.25, 0.5)
    assert whole["fargate_billed_seconds"] == pytest.approx(
        first["fargate_billed_seconds"] + rest["fargate_billed_seconds"])


def test_observed_cost_adds_the_packs_own_calls() -> None:
    prices = load_prices()
    calls = {"dynamodb_read_units": 1e6, "sqs_requests": 1e6, "cloudwatch_requests": 1000}
    cost = observed_cost(fargate_usage([], T0, T0, 0.25, 0.5), calls, prices)
    assert cost["total_usd"] == pytest.approx(prices.ddb_read_per_million
                                              + prices.sqs_per_million
                                              + prices.cloudwatch_per_thousand)


class _Aws:
    """ECS as the pack reads it: running tasks, and any task by ARN."""

    def __init__(self) -> None:
        self.running: dict[str, dict] = {}
        self.stopped: dict[str, dict] = {}

    async def running_tasks(self) -> dict[str, dict]:
        return dict(self.running)

    async def tasks(self, arns: list[str]) -> list[dict]:
        return [self.stopped[a] for a in arns if a in self.stopped]

    async def task_arns(self, desired_status: str = "RUNNING") -> list[str]:
        return list(self.running if desired_status == "RUNNING" else self.stopped)

    async def stopped_tasks(self, arns: list[str]) -> list[dict]:
        return [t for t in await self.tasks(arns) if t.get("group") != "other"]

    async def client(self, name: str):
        raise AssertionError("every task here is sized")


async def test_the_task_clock_uses_ecs_times_or_when_it_saw_the_task() -> None:
    aws = _Aws()
    aws.running["old"] = {"taskArn": "old", "lastStatus": "RUNNING", "cpu": "512",
                          "memory": "1024"}
    clock = TaskClock(aws)
    await clock.sample()
    started = dt.datetime.fromtimestamp(T0, dt.UTC)
    aws.running["new"] = {"taskArn": "new", "lastStatus": "RUNNING", "startedAt": started}
    await clock.sample()
    aws.stopped["new"] = {"taskArn": "new", "lastStatus": "STOPPED", "startedAt": started,
                          "stoppedAt": started + dt.timedelta(seconds=90)}
    del aws.running["new"], aws.running["old"]  # "old" vanished: stopped when seen gone
    await clock.sample()
    old, new = clock.spans["old"], clock.spans["new"]
    assert old.running_at_start and old.started is None and old.stopped is not None
    assert (old.vcpu, old.memory_gb) == (0.5, 1.0)
    assert new.started == T0 and new.stopped == T0 + 90 and new.started_from_ecs
    assert new.stopped_from_ecs and not new.running_at_start


async def test_a_task_that_lived_between_two_samples_is_found_among_the_stopped() -> None:
    aws = _Aws()
    aws.stopped["before"] = {"taskArn": "before", "lastStatus": "STOPPED", "cpu": "256",
                             "memory": "512"}
    clock = TaskClock(aws, interval=3600)  # no sample between start and stop
    await clock.start()
    since = time.time()
    for arn, group in (("blink", "service:edit"), ("foreign", "other")):
        aws.stopped[arn] = {"taskArn": arn, "lastStatus": "STOPPED", "group": group,
                            "cpu": "256", "memory": "512"}
    await clock.stop()
    assert set(clock.spans) == {"blink"}  # not the one stopped before, not a foreign one
    blink = clock.spans["blink"]
    assert blink.between_samples and blink.started is not None and blink.stopped is not None
    usage = fargate_usage(clock.spans.values(), since - 1, time.time() + 1, 0.25, 0.5)
    assert usage["between_samples"] == 1 and usage["fargate_billed_seconds"] == 60.0


def _client(name: str):
    """A real botocore client (never called over the network here)."""
    return botocore.session.get_session().create_client(
        name, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
        endpoint_url="http://127.0.0.1:1")


def test_the_call_meter_counts_calls_and_dynamodbs_reported_units() -> None:
    meter = CallMeter()
    ddb, sqs = _client("dynamodb"), _client("sqs")
    meter.attach(ddb)
    meter.attach(sqs)
    events = ddb.meta.events
    get = ddb.meta.service_model.operation_model("GetItem")
    put = ddb.meta.service_model.operation_model("PutItem")
    params: dict = {}
    events.emit("provide-client-params.dynamodb.GetItem", params=params, model=get)
    assert params == {"ReturnConsumedCapacity": "TOTAL"}  # the pack asks for the units
    events.emit("before-call.dynamodb.GetItem", model=get, params={})
    events.emit("after-call.dynamodb.GetItem", model=get, http_response=None,
                parsed={"ConsumedCapacity": {"TableName": "t", "CapacityUnits": 0.5}})
    events.emit("before-call.dynamodb.PutItem", model=put, params={})
    events.emit("after-call.dynamodb.PutItem", model=put, http_response=None, parsed={})
    op = sqs.meta.service_model.operation_model("GetQueueAttributes")
    sqs.meta.events.emit("before-call.sqs.GetQueueAttributes", model=op, params={})
    u = meter.usage()
    assert u["dynamodb_read_units"] == 0.5 and u["dynamodb_write_units"] == 1.0
    assert u["sqs_requests"] == 1 and meter.unit_answers == 1
    assert meter.calls == {"dynamodb.GetItem": 1, "dynamodb.PutItem": 1,
                           "sqs.GetQueueAttributes": 1}
    assert consumed_units([{"CapacityUnits": 1.0}, {"CapacityUnits": 2.0}]) == 3.0
    assert consumed_units(None) is None and consumed_units(SimpleNamespace()) is None
