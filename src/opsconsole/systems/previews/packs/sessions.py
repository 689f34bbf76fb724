"""The `sessions` pack: email → SES → SQS → hermes → DynamoDB → edit containers → preview.

Talks to the stack through its router (``[sessions] base_url``; the lab's reference is
:mod:`opsconsole_lab.sessions`) with the console's own client, written from
docs/contracts/sessions.md (:mod:`opsconsole.systems.previews.client`); the cost is its own
arithmetic too (:mod:`.sessions_cost`). Every step is a check (one JUnit testcase);
timings are metrics (`cold_start_seconds`, `warm_start_seconds`, `auto_shutdown_seconds`,
`health_check_seconds`, `file_persist_seconds`, `burst_success_rate`, `orphans`), and
each scenario records what its AWS usage would cost at the dated list prices of
``config/pricing.toml`` (`estimated_cost_usd`, line items in the evidence).
"""

from __future__ import annotations

import asyncio
import signal
import time
import uuid
from ssl import SSLContext
from typing import Any

import aiohttp

from ....scenarios.engine import Abort, Check, Outcome, Run, Scenario, outcome
from ....targets.http import ssl_for
from ..client import SessionFailed, SessionsClient
from ..cost import estimate_cost, load_prices

TARGETS = {"cold_start_seconds": 60.0, "warm_start_seconds": 5.0,
           "health_check_seconds": 30.0, "file_persist_seconds": 2.0}
USAGE_KEYS = ("dynamodb_read_units", "dynamodb_write_units", "sqs_requests", "ses_emails",
              "cloudwatch_requests", "fargate_task_seconds", "fargate_billed_seconds")


class CountingClient(SessionsClient):
    """The console's client of the stack, counting the emails this scenario sends (the cost
    check compares them with what the stack metered). Every request that changes the stack
    (anything but a GET: an email, a scale) and a container kill is declared to the run
    first, so read-only refuses it."""

    emails_sent = 0

    def __init__(self, run: Run, base_url: str, timeout: float = 15.0,
                 ssl: SSLContext | bool = True) -> None:
        super().__init__(base_url, timeout, ssl)
        self.run = run

    async def _json(self, method: str, path: str, ok: tuple[int, ...] = (200, 202),
                    **kw: Any) -> Any:
        if method != "GET":
            self.run.mutate(f"{method} {path}", self.base_url)
        return await super()._json(method, path, ok, **kw)

    async def kill_container(self, session_id: str,
                             sig: signal.Signals = signal.SIGKILL) -> int:
        self.run.mutate(f"kill session {session_id}'s container ({sig.name})", self.base_url)
        return await super().kill_container(session_id, sig)

    async def send_email(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        sent = await super().send_email(*args, **kwargs)
        self.emails_sent += 1
        return sent


def _client(run: Run) -> CountingClient:
    target = run.inventory.sessions
    if target is None:
        raise Abort("the inventory has no [sessions] base_url")
    base = str(target.base_url).rstrip("/")
    return CountingClient(run, base, timeout=30, ssl=ssl_for(target, base, "sessions"))


def cost_outcome(before: dict[str, Any] | None, after: dict[str, Any] | None,
                 emails_sent: int) -> Outcome:
    """The run's estimated cost, from the stack's usage counters before and after it.

    Unknown when the stack does not meter a counter; fails when a counter went backwards
    or the stack metered fewer emails than the scenario sent (the estimate would be low).
    """
    missing = sorted({k for k in USAGE_KEYS if k not in (before or {}) or
                      k not in (after or {})})
    if missing:
        return "unknown", {"reason": "the stack reports no usage for: " + ", ".join(missing)}
    assert before is not None and after is not None
    usage = {k: float(after[k]) - float(before[k]) for k in USAGE_KEYS}
    backwards = sorted(k for k, v in usage.items() if v < 0)
    usage |= {k: after.get(k, 0) for k in ("task_vcpu", "task_memory_gb")}
    cost = estimate_cost(usage)
    metered = usage["ses_emails"]
    ok = not backwards and metered >= emails_sent
    return outcome(ok, **cost, usage={k: round(v, 3) for k, v in usage.items()},
                   emails_sent=emails_sent, emails_metered=metered,
                   counters_backwards=backwards)


def stack_up() -> Check:
    async def fn(run: Run) -> Outcome:
        async with _client(run) as sc:
            status, _ = await sc.health("/api/health")
            hermes, _ = await sc.health("/hermes/health")
        return outcome(status == 200 and hermes == 200, router=status, hermes=hermes)

    return Check("sessions stack: router and hermes answer", fn, within=30)


def _user(kind: str) -> str:
    return f"{kind}-{uuid.uuid4().hex[:6]}"


#: what every scenario of the pack changes: emails create sessions (DynamoDB items, SQS
#: messages, edit containers, git commits in the workspaces); the rollback scales to 0
SENDS_EMAIL = "send emails: sessions in DynamoDB, SQS messages, edit containers, git commits"
SCALES = "force the edit service's ECS desired count to 0 (POST /api/scale)"


class SessionsScenario(Scenario):
    needs_lab = False  # any stack behind [sessions] base_url
    mutates = (SENDS_EMAIL, SCALES)

    def steady_state(self):
        return [stack_up()]

    async def method(self, run: Run) -> None:
        async with _client(run) as sc:
            before = (await sc.status()).get("usage")
            try:
                await self.steps(run, sc)
            finally:
                after = (await sc.status()).get("usage")
                status, evidence = cost_outcome(before, after, sc.emails_sent)
                if "total_usd" in evidence:
                    run.metric("estimated_cost_usd", evidence["total_usd"], "USD")
                prices = load_prices()
                await run.record(f"{self.id.split('.')[1]}: estimated AWS cost of the run "
                                 f"(list prices as of {prices.as_of}, {prices.region}), "
                                 "every email metered", (status, evidence))

    async def steps(self, run: Run, sc: SessionsClient) -> None:
        raise NotImplementedError

    async def rollback(self, run: Run) -> None:
        async with _client(run) as sc:
            await sc.scale_down(0)  # nothing this scenario started keeps running


def _target(run: Run, name: str, value: float) -> None:
    run.metric(name, value, "s")


async def _first_session(run: Run, sc: SessionsClient, user: str, instruction: str,
                         timeout: float = 90) -> tuple[dict[str, Any], dict[str, Any]]:
    sent = await sc.send_email(user, instruction, client="opsconsole")
    try:
        done = await sc.wait_message(sent["message_id"], timeout=timeout)
    except (SessionFailed, TimeoutError) as exc:
        raise Abort(f"{user}: {instruction!r} not applied: {exc}") from exc
    return sent, done


class ColdStart(SessionsScenario):
    id = "sessions.cold-start"
    title = "cold start from zero: session, container, preview, file; idle → scaled to 0"

    async def steps(self, run: Run, sc: SessionsClient) -> None:
        await _scale_to_zero(run, sc)
        counts = await sc.counts()
        await run.record("cold-start: services at zero", outcome(
            counts["running"] == 0, running=counts["running"], desired=counts["desired"]))
        user = _user("cold")
        sent, done = await _first_session(run, sc, user, "create page about Cold Starts")
        sid = done["session_id"]
        session = await sc.session(sid) or {}
        await run.record("cold-start: session in DynamoDB", outcome(
            session.get("status") == "active" and session.get("user_id", user) == user,
            session=sid, status=session.get("status")))
        container = session.get("container") or {}
        await run.record("cold-start: container ready", outcome(
            container.get("state") == "running" and bool(container.get("pid")),
            state=container.get("state")))
        status, page = await sc.preview(sid, "pages/cold-starts.html")
        ready = time.time()
        await run.record("cold-start: preview 200", outcome(
            status == 200 and "Cold Starts" in page, status=status))
        log = await sc.workspace_log(user)
        await run.record("cold-start: file persisted (committed to git)", outcome(
            any(c.get("subject") == "create page about Cold Starts" for c in log),
            commits=len(log)))
        _target(run, "cold_start_seconds", ready - sent["accepted_at"])
        _target(run, "health_check_seconds", done["container_ready_at"]
                - done["first_received_at"])
        _target(run, "file_persist_seconds", done["applied_at"] - done["container_ready_at"])
        idle_from = time.monotonic()
        expired = await sc.wait_status(sid, "expired", timeout=_idle(run) + 90)
        await run.wait_until("the container to stop", _running_is(sc, 0), 30)
        run.metric("auto_shutdown_seconds", time.monotonic() - idle_from, "s")
        await run.record("cold-start: idle → scaled to 0 and session expired", outcome(
            expired.get("status") == "expired" and (await sc.counts())["running"] == 0,
            reason=expired.get("end_reason") or expired.get("reason")))
        await _targets_met(run, ("cold_start_seconds", "health_check_seconds",
                                 "file_persist_seconds"))


def _idle(run: Run) -> float:
    lab = run.session.lab
    return lab.spec.sessions_idle_timeout_s if lab is not None else 300.0


def _running_is(sc: SessionsClient, n: int):
    async def cond() -> bool:
        return (await sc.counts())["running"] == n

    return cond


async def _scale_to_zero(run: Run, sc: SessionsClient) -> None:
    """Force the service down to zero containers and wait until none runs."""
    await sc.scale_down(0)
    await run.wait_until("no edit container running", _running_is(sc, 0), 60)


async def _targets_met(run: Run, names: tuple[str, ...]) -> None:
    for name in names:
        value = run.result.metrics.get(name)
        await run.record(f"{name} < {TARGETS[name]:g}", outcome(
            value is not None and value < TARGETS[name], value=value))


class Persistence(SessionsScenario):
    id = "sessions.persistence"
    title = "changes survive a forced scale-down; a new session resumes the workspace"

    async def steps(self, run: Run, sc: SessionsClient) -> None:
        user = _user("persist")
        _, first = await _first_session(run, sc, user, "create page Tides: the sea rises")
        warm_sent = await sc.send_email(user, "update page Tides: and falls", client="opsconsole")
        warm = await sc.wait_message(warm_sent["message_id"], timeout=30)
        _target(run, "warm_start_seconds", warm["applied_at"] - warm_sent["accepted_at"])
        await sc.scale_down(0)
        ended = await sc.wait_status(first["session_id"], "expired", timeout=30)
        await run.record("persistence: forced scale-down ends the session", outcome(
            ended.get("status") == "expired", reason=ended.get("end_reason")))
        _, again = await _first_session(run, sc, user, "create page Moon: it pulls the sea")
        status, tides = await sc.preview(again["session_id"], "pages/tides.html")
        await run.record("persistence: changes survive the forced scale-down", outcome(
            status == 200 and "and falls" in tides, status=status))
        await run.record("persistence: a new session resumes the workspace", outcome(
            again["session_id"] != first["session_id"], first=first["session_id"],
            second=again["session_id"]))
        subjects = [c.get("subject") for c in await sc.workspace_log(user)]
        await run.record("persistence: git history preserved", outcome(
            subjects[:3] == ["create page Moon: it pulls the sea", "update page Tides: and falls",
                             "create page Tides: the sea rises"], history=subjects[:5]))
        await _targets_met(run, ("warm_start_seconds",))


class Concurrent(SessionsScenario):
    id = "sessions.concurrent"
    title = "3 users at once: isolated workspaces, capacity respected, independent expiry"

    async def steps(self, run: Run, sc: SessionsClient) -> None:
        await _scale_to_zero(run, sc)
        users = [_user(f"u{i}") for i in range(3)]
        done = await asyncio.gather(*(_first_session(run, sc, u, f"create page about {u}")
                                      for u in users))
        sids = [d["session_id"] for _, d in done]
        counts = await sc.counts()
        await run.record("concurrent: 3 sessions active at once", outcome(
            len(set(sids)) == 3 and counts["sessions"].get("active", 0) >= 3,
            active=counts["sessions"].get("active")))
        leaks = []
        for sid, user in zip(sids, users, strict=True):
            for other in users:
                if other != user and (await sc.preview(sid, f"pages/{other}.html"))[0] == 200:
                    leaks.append(f"{user} sees {other}")
        await run.record("concurrent: each workspace isolated", outcome(not leaks, leaks=leaks))
        await run.record("concurrent: capacity respected", outcome(
            counts["peak_running"] <= counts["max_capacity"], peak=counts["peak_running"],
            max_capacity=counts["max_capacity"]))
        # keep the first user busy: it must expire after the other two, on its own clock
        await asyncio.sleep(min(5.0, _idle(run) / 3))
        kept = await sc.send_email(users[0], f"update page {users[0]}: still here",
                                   client="opsconsole")
        await sc.wait_message(kept["message_id"], timeout=30)
        ended: dict[str, float] = {}

        async def all_expired() -> bool:
            for sid in sids:
                if sid not in ended and (await sc.session(sid) or {}).get("status") == "expired":
                    ended[sid] = time.monotonic()
            return len(ended) == 3

        await run.wait_until("every session to expire", all_expired, _idle(run) + 90, 0.5)
        order = sorted(sids, key=ended.__getitem__)
        await run.record("concurrent: independent expiry (the busy user expires last)",
                         outcome(order[-1] == sids[0], order=order))


class Routing(SessionsScenario):
    id = "sessions.routing"
    title = "every route answers; the preview's WebSocket upgrade works"

    async def steps(self, run: Run, sc: SessionsClient) -> None:
        user = _user("route")
        _, done = await _first_session(run, sc, user, "create page about Routes")
        sid = done["session_id"]
        for path in ("/api/health", "/hermes/health", f"/session/{sid}",
                     f"/session/{sid}/health"):
            status, _ = await sc.health(path)
            await run.record(f"routing: {path.replace(sid, '<id>')} answers",
                             outcome(status == 200, status=status))
        target = run.inventory.sessions
        ssl = ssl_for(target, sc.base_url, "sessions")
        async with aiohttp.ClientSession() as http, http.ws_connect(sc.ws_url(sid),
                                                                    ssl=ssl) as ws:
            hello = await ws.receive_json(timeout=10)
            await ws.send_json({"type": "ping"})
            pong = await ws.receive_json(timeout=10)
        await run.record("routing: WebSocket upgrade on /ws/hmr", outcome(
            pong.get("type") == "pong", hello=hello.get("type")))


class FailureRecovery(SessionsScenario):
    id = "sessions.failure-recovery"
    title = "a killed container is restarted with its data; a burst of 20 leaves no orphans"
    mutates = (SENDS_EMAIL, SCALES, "SIGKILL a session's edit container")
    burst = 20

    async def steps(self, run: Run, sc: SessionsClient) -> None:
        user = _user("crash")
        _, done = await _first_session(run, sc, user, "create page about Crashes")
        sid = done["session_id"]
        killed = await sc.kill_container(sid)

        async def restarted() -> bool:
            c = ((await sc.session(sid)) or {}).get("container") or {}
            return c.get("pid") not in (None, killed) and c.get("state") == "running"

        took = await run.wait_until("the container to be restarted", restarted, 30, 0.2)
        run.metric("container_restart_seconds", took, "s")
        status, page = await sc.preview(sid, "pages/crashes.html")
        await run.record("failure-recovery: killed container restarted, data kept", outcome(
            status == 200 and "Crashes" in page, status=status, restart_seconds=round(took, 2)))
        await _scale_to_zero(run, sc)

        async def one(i: int) -> str:
            sent = await sc.send_email(_user(f"burst{i}"), f"create page about Burst {i}",
                                       client="opsconsole")
            try:
                await sc.wait_message(sent["message_id"], timeout=180)
                return "applied"
            except SessionFailed:
                return "failed"
            except TimeoutError:
                return "unresolved"

        outcomes = await asyncio.gather(*(one(i) for i in range(self.burst)))
        applied = outcomes.count("applied")
        run.metric("burst_success_rate", applied / self.burst)
        await run.record("failure-recovery: burst of 20 creations, some succeed", outcome(
            applied >= 1, applied=applied, failed=outcomes.count("failed"),
            unresolved=outcomes.count("unresolved")))
        await run.record("failure-recovery: every failure handled (failed cleanly, none "
                         "left hanging)", outcome("unresolved" not in outcomes,
                                                 unresolved=outcomes.count("unresolved")))
        counts = await sc.counts()
        await run.record("failure-recovery: capacity respected under the burst", outcome(
            counts["peak_running"] <= counts["max_capacity"], peak=counts["peak_running"]))
        await sc.scale_down(0)
        try:
            clean = await sc.wait_no_orphans(timeout=60)
            orphans = 0
        except TimeoutError:
            clean = await sc.orphans()
            orphans = sum(len(v) for v in clean.values())
        run.metric("orphans", orphans)
        await run.record("failure-recovery: no orphaned containers or sessions",
                         outcome(orphans == 0, **{k: len(v) for k, v in clean.items()
                                                  if isinstance(v, list)}))


SCENARIOS: list[type[Scenario]] = [ColdStart, Persistence, Concurrent, Routing,
                                   FailureRecovery]


async def smoke_session(run: Run) -> None:
    """`opsconsole smoke` phase 7: one instruction from email to a preview page."""
    if run.inventory.sessions is None:
        await run.record("one session from email to preview",
                         ("unknown", {"reason": "no [sessions] in the inventory"}))
        return
    async with _client(run) as sc:
        user = _user("smoke")
        sent, done = await _first_session(run, sc, user, "create page about Smoke")
        status, page = await sc.preview(done["session_id"], "pages/smoke.html")
        run.metric("session_email_to_preview_s", time.time() - sent["accepted_at"], "s")
        await run.record("one session from email to preview", outcome(
            status == 200 and "Smoke" in page, session=done["session_id"], status=status))
        await sc.scale_down(0)
