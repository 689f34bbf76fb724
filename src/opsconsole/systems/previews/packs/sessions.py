"""The `sessions` pack: activate → SQS → hermes → DynamoDB → edit containers (ECS) →
preview, on any stack that speaks seed 001.

The pack talks to the router only through the seed's endpoints
(docs/contracts/previews.openapi.yaml, :mod:`..client`), validating every answer against
the contract, and reads the rest from the user's AWS account itself (:mod:`..aws`): ECS
service counts and tasks, the session's DynamoDB item (status, TTL, ``task_arn``), the
SQS intake depth, the stack's CloudWatch metrics. What the seed does not define is an
optional capability of ``[previews]`` (:mod:`..capabilities`), ``unknown`` when absent.
Container failure is the ``ecs.stop-task`` fault; the rollback ends only the sessions this
scenario opened (their DynamoDB items and ECS tasks), never the shared service.

Timings are metrics (`cold_start_seconds`, `warm_start_seconds`, `auto_shutdown_seconds`,
`health_check_seconds`, `file_persist_seconds`, `burst_success_rate`, `orphans`), and each
scenario records what its AWS usage would cost at the dated list prices of
``config/pricing.toml`` (`estimated_cost_usd`, line items in the evidence).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from ssl import SSLContext
from typing import Any

import aiohttp

from ....netproxy.throttle_stats import throttle_available, throttle_counts
from ....scenarios.checks import contract_outcome
from ....scenarios.engine import Abort, Check, Outcome, Run, Scenario, outcome
from ....targets.http import ssl_for
from .. import capabilities
from ..aws import LIVE, Missing, PreviewsAws
from ..capabilities import Unavailable
from ..client import PreviewsClient
from ..config import PreviewsTarget, previews_of
from ..cost import (
    DEFAULT_MEMORY_GB,
    DEFAULT_VCPU,
    cost_predictability,
    load_prices,
    observed_cost,
)
from ..dashboard import PUBLISHES, RUNS_NAMESPACE, datapoints
from ..router_cut import route_status, router_cut_available, wait_route_recovered
from ..usage import TaskClock, fargate_usage
from .monitoring import Monitoring
from .targets import previews_aws as _aws
from .targets import previews_target as _target

TARGETS = {"cold_start_seconds": 60.0, "warm_start_seconds": 5.0,
           "health_check_seconds": 30.0, "file_persist_seconds": 2.0}
ENDED_BY_PACK = "opsconsole: ended by the scenario that opened it"


class SessionFailed(RuntimeError):
    """The session ended failed (DynamoDB) before applying the instruction."""


class ActivationRefused(Abort):
    """The stack refused an activation with a conforming 5XX error (its back end, e.g.
    throttled DynamoDB, could not take it): a clean failure inside a burst."""


class CountingClient(PreviewsClient):
    """The console's client of the stack, counting the activations this scenario sends (the
    cost check compares them with what the stack metered) and the sessions it opened (the
    rollback ends those and nothing else). An activation is declared to the run first, so
    read-only refuses it."""

    def __init__(self, run: Run, base_url: str, timeout: float = 15.0,
                 ssl: SSLContext | bool = True) -> None:
        super().__init__(base_url, timeout, ssl)
        self.run = run
        self.emails_sent = 0

    async def activate(self, user: str, instruction: str, client: str = "opsconsole"
                       ) -> tuple[int, Any]:
        self.run.mutate("activate a session (POST /hermes/api/sessions/activate)",
                        self.base_url)
        status, body = await super().activate(user, instruction, client)
        self.emails_sent += 1
        return status, body


def _client(run: Run) -> CountingClient:
    target = _target(run)
    base = str(target.base_url).rstrip("/")
    return CountingClient(run, base, timeout=30, ssl=ssl_for(target, base, "previews"))


def _own(run: Run) -> set[str]:
    """The sessions this scenario opened (kept on the run for the rollback)."""
    own = getattr(run, "_previews_sessions", None)
    if own is None:
        own = set()
        run._previews_sessions = own  # type: ignore[attr-defined]
    return own


def cost_outcome(before: dict[str, Any] | None, after: dict[str, Any] | None,
                 observed: dict[str, Any] | None, observed_reason: str = "") -> Outcome:
    """The run's cost as the pack observed it (ECS task lifetimes + its own AWS calls),
    and the stack's own estimate held against it (``before``/``after``: the stack's usage
    counters, an optional capability): :func:`..cost.cost_predictability`."""
    return cost_predictability(observed, observed_reason, before, after)


async def _record_cost(run: Run, name: str, aws: PreviewsAws, clock: TaskClock | None,
                       since: float, why: str, before: dict[str, Any] | None,
                       after: dict[str, Any] | None) -> None:
    """The cost check: what the pack observed (`estimated_cost_usd`) against the stack's
    own estimate (`stack_estimated_cost_usd`), ±10 %."""
    observed = None
    if clock is not None:
        await clock.stop()
        why = f"sampling ECS failed ({clock.error})" if clock.error else ""
        if not why:
            fargate = fargate_usage(clock.spans.values(), since, time.time(), DEFAULT_VCPU,
                                    DEFAULT_MEMORY_GB)
            observed = observed_cost(fargate, aws.meter.usage())
            observed["ecs_samples"] = clock.samples
            observed["sampled_every_s"] = clock.interval
    status, evidence = cost_outcome(before, after, observed, why)
    if observed is not None:
        run.metric("estimated_cost_usd", observed["total_usd"], "USD")
    if "stack" in evidence:
        run.metric("stack_estimated_cost_usd", evidence["stack"]["total_usd"], "USD")
    prices = load_prices()
    await run.record(f"{name}: cost predictability: the stack's estimate within ±10 % of "
                     f"the observed (list prices as of {prices.as_of}, {prices.region})",
                     (status, evidence))
    await _publish(run, name, aws)


async def _publish(run: Run, name: str, aws: PreviewsAws) -> None:
    """The run's metrics to CloudWatch for the seed's dashboard (`sessions.monitoring`),
    only when ``[previews] dashboard`` is set (custom metrics cost money)."""
    if not _target(run).dashboard:
        return
    failures = sum(c.status == "fail" for c in run.result.checks)
    data = datapoints(run.result.id, run.result.metrics, failures)
    run.mutate(f"publish {len(data)} metrics to CloudWatch {RUNS_NAMESPACE}", "cloudwatch")
    try:
        cw = await aws.client("cloudwatch")
        r = await cw.put_metric_data(Namespace=RUNS_NAMESPACE, MetricData=data)
    except Missing as exc:
        await run.record(f"{name}: the run's metrics published for the dashboard",
                         ("unknown", {"reason": str(exc)}))
        return
    code = r.get("ResponseMetadata", {}).get("HTTPStatusCode")
    await run.record(f"{name}: the run's metrics published for the dashboard", outcome(
        code == 200, namespace=RUNS_NAMESPACE, metrics=[d["MetricName"] for d in data],
        http_status=code))


def stack_up() -> Check:
    async def fn(run: Run) -> Outcome:
        async with _client(run) as sc:
            status, _ = await sc.health("/api/health")
            hermes, _ = await sc.health("/hermes/health")
        return outcome(status == 200 and hermes == 200, router=status, hermes=hermes)

    return Check("sessions stack: router and hermes answer", fn, within=30)


def _user(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:6]}"


#: what every scenario of the pack changes
ACTIVATES = ("activate sessions: DynamoDB items, SQS messages, edit containers (ECS tasks), "
             "git commits")
ENDS_OWN = ("end the sessions the scenario opened: their DynamoDB items (status expired) "
            "and their ECS tasks (StopTask)")


async def _unknown_or(run: Run, name: str, fn: Callable[[], Awaitable[Outcome]]) -> None:
    """Record ``fn``'s outcome; ``unknown`` with the reason when the inventory lacks a name
    or capability the check needs."""
    try:
        result = await fn()
    except (Missing, Unavailable) as exc:
        result = ("unknown", {"reason": str(exc)})
    await run.record(name, result)


class SessionsScenario(Scenario):
    needs_lab = False  # any stack behind [previews] base_url
    mutates = (ACTIVATES, ENDS_OWN, PUBLISHES)

    def steady_state(self):
        return [stack_up()]

    async def method(self, run: Run) -> None:
        target = _target(run)
        name = self.id.split(".")[1]
        async with _client(run) as sc, _aws(run) as aws:
            ssl = ssl_for(target, sc.base_url, "previews")
            before = await capabilities.usage(target, run.http, ssl)
            clock, since, why = TaskClock(aws), time.time(), ""
            try:
                await clock.start()
            except Missing as exc:
                clock, why = None, str(exc)
            try:
                await self.steps(run, sc, aws)
            finally:
                await _record_cost(run, name, aws, clock, since, why, before,
                                   await capabilities.usage(target, run.http, ssl))
                await run.record(f"{name}: every router answer conforms to the previews "
                                 "contract", sc.log.outcome())

    async def steps(self, run: Run, sc: CountingClient, aws: PreviewsAws) -> None:
        raise NotImplementedError

    async def rollback(self, run: Run) -> None:
        own = _own(run)
        if own:
            async with _aws(run) as aws:
                await _end_sessions(run, aws, sorted(own))


async def _end_sessions(run: Run, aws: PreviewsAws, sids: list[str]) -> list[str]:
    """End the given (own) sessions: item → expired, then stop its task. Returns those
    this call ended."""
    ended = []
    for sid in sids:
        try:
            item = await aws.session(sid)
        except Missing:
            return ended
        if item is None or item.get("status") not in LIVE:
            continue
        run.mutate(f"end session {sid} (DynamoDB status expired, StopTask)", sid)
        if await aws.end_session(sid, ENDED_BY_PACK):
            ended.append(sid)
        if item.get("task_arn"):
            await aws.stop_task(str(item["task_arn"]), ENDED_BY_PACK)
    return ended


def _metric(run: Run, name: str, value: float) -> None:
    run.metric(name, value, "s")


class Opened:
    """One activation: its session and the times seen from outside."""

    def __init__(self, session_id: str, sent_at: float) -> None:
        self.session_id = session_id
        self.sent_at = sent_at
        self.healthy_at = 0.0
        self.page_at = 0.0


async def _activate(run: Run, sc: CountingClient, user: str, instruction: str) -> Opened:
    sent_at = time.time()
    status, body = await sc.activate(user, instruction)
    check = contract_outcome(sc.contract, "POST", "/hermes/api/sessions/activate", status,
                             body)
    if status >= 500 and check[0] == "pass":  # refused cleanly, as the contract says
        raise ActivationRefused(f"{user}: activation answered HTTP {status}: "
                                f"{str(body)[:200]}")
    if status != 202 or check[0] != "pass":
        await run.record("activate: 202 {sessionId, status, previewUrl}", check)
        raise Abort(f"{user}: activation answered HTTP {status}: {str(body)[:200]}")
    sid = str(body["sessionId"])
    _own(run).add(sid)
    return Opened(sid, sent_at)


async def _applied(run: Run, sc: CountingClient, aws: PreviewsAws, opened: Opened,
                   path: str, text: str, timeout: float = 90, interval: float = 0.1
                   ) -> Opened:
    """Wait until the session's preview serves ``path`` with ``text`` (the instruction is
    applied), noting when its container first answered health; abort if DynamoDB says
    the session failed."""
    sid = opened.session_id
    deadline = time.monotonic() + timeout
    last_item = 0.0
    while True:
        if not opened.healthy_at:
            status, _ = await sc.session_health(sid)
            if status == 200:
                opened.healthy_at = time.time()
        if opened.healthy_at:
            status, page = await sc.preview(sid, path)
            if status == 200 and text in page:
                opened.page_at = time.time()
                return opened
        if time.monotonic() - last_item > 1.0:
            last_item = time.monotonic()
            with contextlib.suppress(Missing):
                item = await aws.session(sid)
                if item is not None and item.get("status") == "failed":
                    raise SessionFailed(f"session {sid} failed: {item.get('end_reason')}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {path} of "
                               f"session {sid} to show {text!r}")
        await asyncio.sleep(interval)


async def _first(run: Run, sc: CountingClient, aws: PreviewsAws, user: str, instruction: str,
                 path: str, text: str, timeout: float = 90) -> Opened:
    opened = await _activate(run, sc, user, instruction)
    try:
        return await _applied(run, sc, aws, opened, path, text, timeout)
    except (SessionFailed, TimeoutError) as exc:
        raise Abort(f"{user}: {instruction!r} not applied: {exc}") from exc


async def _wait_item(run: Run, aws: PreviewsAws, sid: str, statuses: tuple[str, ...],
                     timeout: float) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def reached() -> bool:
        item = await aws.session(sid)
        if item is not None and item.get("status") in statuses:
            found.update(item)
            return True
        return False

    await run.wait_until(f"session {sid} to be {'/'.join(statuses)} in DynamoDB", reached,
                         timeout, 0.25)
    return found


async def _task_stopped(aws: PreviewsAws, arn: str) -> dict[str, Any] | None:
    task = await aws.task(arn)
    return task if task is not None and task.get("lastStatus") == "STOPPED" else None


def _idle(run: Run) -> float:
    lab = run.session.lab
    return lab.spec.sessions_idle_timeout_s if lab is not None else 300.0


async def _ecs_outcome(aws: PreviewsAws, sid: str, item: dict[str, Any]) -> Outcome:
    return ecs_task_outcome(sid, item, await aws.services(), await aws.running_tasks())


def ecs_task_outcome(sid: str, item: dict[str, Any], counts: dict[str, dict[str, int]],
                     tasks: dict[str, dict[str, Any]]) -> Outcome:
    """pass: the session's item names a task that is among the services' RUNNING tasks,
    and describe_services counts at least one running and one desired."""
    arn = item.get("task_arn")
    if not arn:
        return "unknown", {"reason": f"the sessions table's item {sid} has no task_arn",
                           "services": counts}
    running = sum(c["running"] for c in counts.values())
    desired = sum(c["desired"] for c in counts.values())
    return outcome(arn in tasks and running >= 1 and desired >= 1, services=counts,
                   running_tasks=len(tasks), task_arn=arn,
                   task_status=(tasks.get(arn) or {}).get("lastStatus"))


def orphans_of(items: dict[str, dict[str, Any]], running: dict[str, Any]
               ) -> dict[str, list[str]]:
    """Of the sessions a scenario opened (their DynamoDB items by id): those still live,
    and the tasks of theirs ECS still runs."""
    return {"sessions": [sid for sid, item in items.items() if item.get("status") in LIVE],
            "tasks": [str(item["task_arn"]) for item in items.values()
                      if item.get("task_arn") in running]}


def session_item_outcome(sid: str, user: str, item: dict[str, Any], now: float) -> Outcome:
    """pass: the sessions table's item is ``active``, the user's, with a TTL in the future."""
    ttl = item.get("expires_at")
    return outcome(item.get("status") == "active" and item.get("user_id") == user
                   and isinstance(ttl, int | float) and ttl > now,
                   session=sid, status=item.get("status"), user_id=item.get("user_id"),
                   expires_at=ttl)


class Sampler:
    """Samples the services' running tasks (ECS) while a phase runs: the peak."""

    def __init__(self, aws: PreviewsAws) -> None:
        self.aws = aws
        self.peak = 0
        self.samples = 0
        self.error = ""
        self._task: asyncio.Task[None] | None = None

    async def _loop(self) -> None:
        while True:
            try:
                self.peak = max(self.peak, len(await self.aws.running_tasks()))
                self.samples += 1
            except Missing as exc:
                self.error = str(exc)
                return
            await asyncio.sleep(0.3)

    def __enter__(self) -> Sampler:
        self._task = asyncio.create_task(self._loop())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()

    def outcome(self, target: PreviewsTarget) -> Outcome:
        if self.error:
            return "unknown", {"reason": self.error}
        cap = capabilities.capacity(target)
        return outcome(self.peak <= cap and self.samples > 0, peak_running_tasks=self.peak,
                       capacity=cap, samples=self.samples)


class ColdStart(SessionsScenario):
    id = "sessions.cold-start"
    title = "cold start: session, container (ECS task), preview, file; idle → task stopped"

    async def steps(self, run: Run, sc: CountingClient, aws: PreviewsAws) -> None:
        target = _target(run)

        async def at_zero() -> Outcome:
            counts: dict[str, Any] = {}

            async def zero() -> bool:
                counts.update(await aws.services())
                return not await aws.running_tasks()

            try:
                await run.wait_until("no edit task running", zero, 30, 0.5)
            except Abort:
                return "unknown", {"reason": "other users' sessions keep tasks running: "
                                             "the start is not from zero", "services": counts}
            running = await aws.running_tasks()  # the verdict: what ECS shows now
            return outcome(not running, services=counts, running_tasks=len(running))

        await _unknown_or(run, "cold-start: services at zero (ECS)", at_zero)
        user = _user("cold")
        started = time.time()
        opened = await _first(run, sc, aws, user, "create page about Cold Starts",
                              "pages/cold-starts.html", "Cold Starts")
        sid = opened.session_id
        item: dict[str, Any] = {}

        async def in_table() -> Outcome:
            item.update(await aws.session(sid) or {})
            return session_item_outcome(sid, user, item, time.time())

        await _unknown_or(run, "cold-start: session active in DynamoDB (get_item: status, "
                               "user, TTL in the future)", in_table)
        await _unknown_or(run, "cold-start: ECS runs the session's task (describe_services, "
                               "list_tasks)", lambda: _ecs_outcome(aws, sid, item))
        # the session's last request: its idle clock runs from (no later than) here
        idle_from = time.monotonic()
        status, page = await sc.preview(sid, "pages/cold-starts.html")
        await run.record("cold-start: preview 200", outcome(
            status == 200 and "Cold Starts" in page, status=status))

        async def git() -> Outcome:
            log = await _git_until(target, user, lambda h: "create page about Cold Starts" in h)
            return outcome("create page about Cold Starts" in log, commits=len(log))

        await _unknown_or(run, "cold-start: file persisted (committed to git)", git)

        async def metrics() -> Outcome:
            seen: list[float | None] = [None]

            async def published() -> bool:
                seen[0] = await aws.metric_max("RunningContainers", started)
                return seen[0] is not None and seen[0] >= 1

            with contextlib.suppress(Abort):
                await run.wait_until("RunningContainers in CloudWatch", published, 20, 0.5)
            return outcome(seen[0] is not None and seen[0] >= 1, metric="RunningContainers",
                           maximum=seen[0])

        await _unknown_or(run, "cold-start: the stack's CloudWatch metrics show the "
                               "container", metrics)
        _metric(run, "cold_start_seconds", opened.page_at - opened.sent_at)
        _metric(run, "health_check_seconds", opened.healthy_at - opened.sent_at)
        _metric(run, "file_persist_seconds", opened.page_at - opened.healthy_at)
        try:
            expired = await _wait_item(run, aws, sid, ("expired",), _idle(run) + 90)
        except Missing as exc:
            await run.record("cold-start: idle → task stopped and session expired",
                             ("unknown", {"reason": str(exc)}))
        else:
            arn = str(expired.get("task_arn") or "")
            stopped: dict[str, Any] = {}

            async def task_stopped() -> bool:
                if not arn:
                    return True  # nothing to wait for: the check below fails
                stopped.update(await _task_stopped(aws, arn) or {})
                return bool(stopped)

            await run.wait_until("the session's task to stop", task_stopped, 30, 0.25)
            run.metric("auto_shutdown_seconds", time.monotonic() - idle_from, "s")
            await run.record("cold-start: idle → task stopped and session expired", outcome(
                bool(arn) and bool(stopped), reason=expired.get("end_reason"), task_arn=arn,
                stopped_reason=stopped.get("stoppedReason"),
                expires_at=expired.get("expires_at")))
        await _targets_met(run, ("cold_start_seconds", "health_check_seconds",
                                 "file_persist_seconds"))


async def _targets_met(run: Run, names: tuple[str, ...]) -> None:
    for name in names:
        value = run.result.metrics.get(name)
        await run.record(f"{name} < {TARGETS[name]:g}", outcome(
            value is not None and value < TARGETS[name], value=value))


async def _git_until(target: PreviewsTarget, user: str, ok: Callable[[list[str]], bool],
                     timeout: float = 10.0) -> list[str]:
    """The workspace history once ``ok`` holds (the preview serves a file as soon as it is
    written; its commit follows), or as it is at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        history = await capabilities.git_log(target, user)
        if ok(history) or time.monotonic() > deadline:
            return history
        await asyncio.sleep(0.2)


class Persistence(SessionsScenario):
    id = "sessions.persistence"
    title = "changes survive the end of a session; a new session resumes the workspace"

    async def steps(self, run: Run, sc: CountingClient, aws: PreviewsAws) -> None:
        target = _target(run)
        user = _user("persist")
        first = await _first(run, sc, aws, user, "create page Tides: the sea rises",
                             "pages/tides.html", "the sea rises")
        warm = await _activate(run, sc, user, "update page Tides: and falls")
        await run.record("persistence: the warm instruction goes to the live session",
                         outcome(warm.session_id == first.session_id,
                                 first=first.session_id, warm=warm.session_id))
        try:
            await _applied(run, sc, aws, warm, "pages/tides.html", "and falls", 30)
        except (SessionFailed, TimeoutError) as exc:
            raise Abort(f"{user}: the update was not applied: {exc}") from exc
        _metric(run, "warm_start_seconds", warm.page_at - warm.sent_at)
        try:
            ended = await _end_sessions(run, aws, [first.session_id])
            item = await _wait_item(run, aws, first.session_id, ("expired", "failed"), 30)
            gone: list[int] = []

            async def not_served() -> bool:
                gone[:] = [(await sc.preview(first.session_id, "pages/tides.html"))[0]]
                return gone[0] in (404, 410)

            await run.wait_until("the ended session's preview to go", not_served, 30, 0.2)
            await run.record("persistence: ending the session stops its preview", outcome(
                item.get("status") == "expired" and first.session_id in ended,
                status=item.get("status"), preview=gone[0]))
        except Missing as exc:
            raise Abort(f"cannot end the session without its table: {exc}") from exc
        again = await _first(run, sc, aws, user, "create page Moon: it pulls the sea",
                             "pages/moon.html", "it pulls the sea")
        status, tides = await sc.preview(again.session_id, "pages/tides.html")
        await run.record("persistence: changes survive the end of the session", outcome(
            status == 200 and "and falls" in tides, status=status))
        await run.record("persistence: a new session resumes the workspace", outcome(
            again.session_id != first.session_id, first=first.session_id,
            second=again.session_id))

        async def history() -> Outcome:
            expected = ["create page Moon: it pulls the sea", "update page Tides: and falls",
                        "create page Tides: the sea rises"]
            subjects = await _git_until(target, user, lambda h: h[:3] == expected)
            return outcome(subjects[:3] == expected, history=subjects[:5])

        await _unknown_or(run, "persistence: git history preserved", history)
        await _targets_met(run, ("warm_start_seconds",))


class Concurrent(SessionsScenario):
    id = "sessions.concurrent"
    title = "3 users at once: isolated workspaces, capacity respected, independent expiry"

    async def steps(self, run: Run, sc: CountingClient, aws: PreviewsAws) -> None:
        target = _target(run)
        users = [_user(f"u{i}") for i in range(3)]
        with Sampler(aws) as sampler:
            done = await asyncio.gather(*(_first(run, sc, aws, u, f"create page about {u}",
                                                 f"pages/{u}.html", u) for u in users))
        sids = [d.session_id for d in done]

        async def active() -> Outcome:
            items = [await aws.session(s) or {} for s in sids]
            statuses = [i.get("status") for i in items]
            return outcome(len(set(sids)) == 3 and statuses.count("active") == 3,
                           statuses=statuses)

        await _unknown_or(run, "concurrent: 3 sessions active at once (DynamoDB)", active)
        leaks = []
        for sid, user in zip(sids, users, strict=True):
            for other in users:
                if other != user and (await sc.preview(sid, f"pages/{other}.html"))[0] == 200:
                    leaks.append(f"{user} sees {other}")
        await run.record("concurrent: each workspace isolated", outcome(not leaks, leaks=leaks))
        await _unknown_or(run, "concurrent: capacity respected (peak ECS tasks)",
                          lambda: _as_coro(sampler.outcome(target)))
        # keep the first user busy: it must expire after the other two, on its own clock
        await asyncio.sleep(min(5.0, _idle(run) / 3))
        kept = await _activate(run, sc, users[0], f"update page {users[0]}: still here")
        try:
            await _applied(run, sc, aws, kept, f"pages/{users[0]}.html", "still here", 30)
        except (SessionFailed, TimeoutError) as exc:
            raise Abort(f"{users[0]}: the update was not applied: {exc}") from exc
        ended: dict[str, float] = {}

        async def all_expired() -> bool:
            for sid in sids:
                if sid not in ended and ((await aws.session(sid)) or {}).get("status") == \
                        "expired":
                    ended[sid] = time.monotonic()
            return len(ended) == 3

        try:
            await run.wait_until("every session to expire", all_expired, _idle(run) + 90, 0.5)
        except Missing as exc:
            await run.record("concurrent: independent expiry (the busy user expires last)",
                             ("unknown", {"reason": str(exc)}))
            return
        order = sorted(sids, key=ended.__getitem__)
        await run.record("concurrent: independent expiry (the busy user expires last)",
                         outcome(order[-1] == sids[0], order=order))


async def _as_coro(value: Outcome) -> Outcome:
    return value


class Routing(SessionsScenario):
    id = "sessions.routing"
    title = "every route answers per the contract; the preview's WebSocket upgrade works"

    async def steps(self, run: Run, sc: CountingClient, aws: PreviewsAws) -> None:
        user = _user("route")
        opened = await _first(run, sc, aws, user, "create page about Routes",
                              "pages/routes.html", "Routes")
        sid = opened.session_id
        for path, template in (("/api/health", "/api/health"),
                               ("/hermes/health", "/hermes/health"),
                               (f"/session/{sid}/health", "/session/{id}/health")):
            status, body = await sc.health(path, template)
            verdict, evidence = contract_outcome(sc.contract, "GET", template, status, body)
            if status != 200:
                verdict = "fail"
            await run.record(f"routing: GET {template} answers 200 per the contract",
                             (verdict, evidence))
        status, page = await sc.preview(sid)
        await run.record("routing: GET /session/{id} serves the preview", outcome(
            status == 200 and "<html" in page.lower(), status=status))
        target = _target(run)
        ssl = ssl_for(target, sc.base_url, "previews")
        async with aiohttp.ClientSession() as http, http.ws_connect(sc.ws_url(sid),
                                                                    ssl=ssl) as ws:
            hello = await ws.receive_json(timeout=10)
            await ws.send_json({"type": "ping"})
            pong = await ws.receive_json(timeout=10)
        await run.record("routing: WebSocket upgrade on /ws/hmr", outcome(
            pong.get("type") == "pong" and hello.get("type") == "hello", hello=hello.get("type")))


THROTTLE_FRACTION = 0.3
THROTTLED = ("failure-recovery: the burst ran under DynamoDB throttling (calls throttled at "
             "the fault proxy)")
NETWORK_CUT = ("failure-recovery: the route recovers after the router ↔ containers network "
               "is cut")


def throttled_outcome(before: dict[str, Any], after: dict[str, Any],
                      fraction: float) -> Outcome:
    """pass: the proxy throttled some of the service's calls between ``before`` and
    ``after`` (its counters, :func:`throttle_counts`): the burst really ran throttled."""
    throttled = after["throttled"] - before["throttled"]
    return outcome(throttled > 0, fraction=fraction, throttled=throttled,
                   passed=after["passed"] - before["passed"],
                   by_operation={k: v - before["throttled_by_operation"].get(k, 0)
                                 for k, v in after["throttled_by_operation"].items()})


def network_cut_outcome(before: int, during: int, recovered_s: float | None) -> Outcome:
    """pass: the route answered 200 before the cut, failed during it (an error status or
    no answer: 0 is "no answer"), and answered 200 again after the heal."""
    return outcome(before == 200 and during != 200 and recovered_s is not None,
                   before=before, during_cut=during,
                   recovered_s=round(recovered_s, 3) if recovered_s is not None else None)


class FailureRecovery(SessionsScenario):
    id = "sessions.failure-recovery"
    title = ("a stopped ECS task is replaced with its data; the router recovers from a cut "
             "to its containers; a burst of 20 under DynamoDB throttling leaves no orphans "
             "and an empty queue")
    mutates = (ACTIVATES, ENDS_OWN, PUBLISHES,
               "stop a session's ECS task (fault ecs.stop-task)",
               "cut the router ↔ containers network (fault previews.router-cut)",
               f"throttle {int(THROTTLE_FRACTION * 100)} % of DynamoDB calls during the burst "
               "(fault aws.throttle)")
    burst = 20

    async def steps(self, run: Run, sc: CountingClient, aws: PreviewsAws) -> None:
        target = _target(run)
        user = _user("crash")
        opened = await _first(run, sc, aws, user, "create page about Crashes",
                              "pages/crashes.html", "Crashes")
        await self._stopped_task_replaced(run, sc, aws, opened.session_id)
        await self._network_cut(run, sc, opened.session_id)
        with contextlib.suppress(Missing):  # its slot is the burst's (only our own session)
            await _end_sessions(run, aws, [opened.session_id])
        why = throttle_available(run)
        throttle = before = None
        if why is None:
            before = await throttle_counts(run)
            throttle = await run.inject("aws.throttle", "aws", service="dynamodb",
                                        fraction=THROTTLE_FRACTION)
        try:
            with Sampler(aws) as sampler:
                outcomes = await asyncio.gather(*(self._one(run, sc, aws, i)
                                                  for i in range(self.burst)))
        finally:
            if throttle is not None:
                await run.heal(throttle)
        if before is None:
            await run.record(THROTTLED, ("unknown", {"reason": f"aws.throttle: {why}"}))
        else:
            after = await throttle_counts(run)
            await run.record(THROTTLED, throttled_outcome(before, after, THROTTLE_FRACTION))
        applied = outcomes.count("applied")
        run.metric("burst_success_rate", applied / self.burst)
        await run.record("failure-recovery: burst of 20 creations, some succeed", outcome(
            applied >= 1, applied=applied, failed=outcomes.count("failed"),
            unresolved=outcomes.count("unresolved")))
        await run.record("failure-recovery: every failure handled (failed cleanly, none "
                         "left hanging)", outcome("unresolved" not in outcomes,
                                                 unresolved=outcomes.count("unresolved")))
        await _unknown_or(run, "failure-recovery: capacity respected under the burst (peak "
                               "ECS tasks)", lambda: _as_coro(sampler.outcome(target)))
        await _unknown_or(run, "failure-recovery: no orphaned tasks or sessions",
                          lambda: self._orphans(run, aws))
        await _unknown_or(run, "failure-recovery: the intake queue drained (SQS)",
                          lambda: self._drained(run, aws))

    async def _stopped_task_replaced(self, run: Run, sc: CountingClient, aws: PreviewsAws,
                                     sid: str) -> None:
        name = "failure-recovery: a stopped ECS task is replaced, data kept"
        try:
            item = await aws.session(sid) or {}
            await aws.running_tasks()
        except Missing as exc:
            await run.record(name, ("unknown", {"reason": str(exc)}))
            return
        arn = str(item.get("task_arn") or "")
        if not arn:
            await run.record(name, ("unknown", {"reason": f"the sessions table's item {sid} "
                                                          "has no task_arn"}))
            return
        fault = await run.inject("ecs.stop-task", arn)
        replaced: dict[str, Any] = {}

        async def restarted() -> bool:
            now = await aws.session(sid) or {}
            new = str(now.get("task_arn") or "")
            if not new or new == arn:
                return False
            if new not in await aws.running_tasks():
                return False
            status, page = await sc.preview(sid, "pages/crashes.html")
            replaced.update(task_arn=new, status=status)
            return status == 200 and "Crashes" in page

        try:
            took = await run.wait_until("the stopped task to be replaced", restarted, 45, 0.25)
        finally:
            await run.heal(fault)
        run.metric("container_restart_seconds", took, "s")
        old = await aws.task(arn) or {}
        await run.record(name, outcome(
            old.get("lastStatus") == "STOPPED" and bool(replaced), stopped=arn,
            replaced_by=replaced.get("task_arn"), restart_seconds=round(took, 2)))

    async def _network_cut(self, run: Run, sc: CountingClient, sid: str) -> None:
        """Cut the router ↔ containers network: the session's route fails; heal it: the
        route answers again, ``network_recovery_seconds`` after the heal."""
        why = router_cut_available(run)
        if why is not None:
            await run.record(NETWORK_CUT, ("unknown", {"reason": why}))
            return
        base = _target(run).base_url
        control = await route_status(run.http, str(base), sid)
        cut = await run.inject("previews.router-cut", "sessions", mode="reset")
        try:
            during = await route_status(run.http, str(base), sid)
        finally:
            await run.heal(cut)
        took = await wait_route_recovered(run.http, str(base), sid, timeout=30)
        if took is not None:
            run.metric("network_recovery_seconds", took, "s")
        await run.record(NETWORK_CUT, network_cut_outcome(control, during, took))

    async def _one(self, run: Run, sc: CountingClient, aws: PreviewsAws, i: int) -> str:
        try:
            opened = await _activate(run, sc, _user(f"burst{i}"),
                                     f"create page about Burst {i}")
        except ActivationRefused:
            return "failed"
        try:
            # 20 at once: a slower poll, so the pack does not load the stack it measures
            await _applied(run, sc, aws, opened, f"pages/burst-{i}.html", f"Burst {i}", 180,
                           interval=0.5)
            return "applied"
        except SessionFailed:
            return "failed"
        except TimeoutError:
            return "unresolved"

    async def _orphans(self, run: Run, aws: PreviewsAws) -> Outcome:
        """End this scenario's sessions, then: none of them live in DynamoDB, none of
        their tasks still running."""
        own = sorted(_own(run))
        await _end_sessions(run, aws, own)
        found: dict[str, list[str]] = {"sessions": [], "tasks": []}

        async def clean() -> bool:
            running = await aws.running_tasks()
            items = {sid: await aws.session(sid) or {} for sid in own}
            found.update(orphans_of(items, running))
            return not found["sessions"] and not found["tasks"]

        with contextlib.suppress(Abort):
            await run.wait_until("no orphaned tasks or sessions", clean, 60, 0.5)
        orphans = len(found["sessions"]) + len(found["tasks"])
        run.metric("orphans", orphans)
        return outcome(orphans == 0, sessions_checked=len(own),
                       live_sessions=found["sessions"][:10], running_tasks=found["tasks"][:10])

    async def _drained(self, run: Run, aws: PreviewsAws) -> Outcome:
        depth: dict[str, int] = {}

        async def empty() -> bool:
            depth.update(await aws.queue_depth())
            return depth["visible"] == 0 and depth["in_flight"] == 0

        with contextlib.suppress(Abort):
            await run.wait_until("the intake queue to drain", empty, 60, 0.5)
        return outcome(depth.get("visible") == 0 and depth.get("in_flight") == 0, **depth)


SCENARIOS: list[type[Scenario]] = [ColdStart, Persistence, Concurrent, Routing,
                                   FailureRecovery, Monitoring]


async def smoke_session(run: Run) -> None:
    """`opsconsole smoke` phase 7: one instruction from activation to a preview page."""
    if previews_of(run.inventory) is None:
        await run.record("one session from email to preview",
                         ("unknown", {"reason": "no [previews] in the inventory"}))
        return
    async with _client(run) as sc, _aws(run) as aws:
        user = _user("smoke")
        opened = await _first(run, sc, aws, user, "create page about Smoke",
                              "pages/smoke.html", "Smoke")
        run.metric("session_email_to_preview_s", opened.page_at - opened.sent_at, "s")
        await run.record("one session from email to preview", outcome(
            opened.page_at > 0, session=opened.session_id,
            seconds=round(opened.page_at - opened.sent_at, 3)))
        with contextlib.suppress(Missing):
            await _end_sessions(run, aws, [opened.session_id])
