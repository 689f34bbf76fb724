"""hermes: the worker that turns queued instruction emails into sessions.

For each SQS message (long poll): parse the email, then — one message per user at a
time — find or open the user's session in DynamoDB (conditional writes: a redelivered
email finds its session instead of opening another), ask the orchestrator for the
session's container, and post the instruction to it. Capacity refused, throttling,
a container that is (re)starting and lost races are retried with bounded exponential
backoff and full jitter. The message is deleted only after success. When the retries
of one delivery run out the message is made visible again after ``redelivery_delay``;
on its last allowed delivery (``max_receives``) it moves to the DLQ and a session that
never got a container ends ``failed``. While a message is being worked on its
visibility is extended, so a slow start is not mistaken for a lost worker.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
import time
from typing import Any

import aiohttp
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError

from .aws import Aws
from .backoff import Backoff, RetriesExhausted, is_throttle, retry
from .config import StackConfig
from .container import CONTROL
from .events import EventLog
from .instructions import EmailRequest, InstructionError, parse_email_body
from .orchestrator import (
    CapacityRefused,
    Container,
    ContainerUnavailable,
    Orchestrator,
    SessionGone,
)
from .store import ENDED, SessionStore, session_id_for

log = logging.getLogger("sessions.hermes")
TRACKED_MESSAGES = 5000


class LostRace(Exception):
    """Another delivery changed the user's lease first: decide again."""


def retryable(exc: BaseException) -> bool:
    return isinstance(exc, (CapacityRefused, ContainerUnavailable, SessionGone, LostRace,
                            aiohttp.ClientError, TimeoutError, EndpointConnectionError,
                            ConnectionClosedError)) or is_throttle(exc)


class Hermes:
    def __init__(self, cfg: StackConfig, aws: Aws, store: SessionStore, orch: Orchestrator,
                 events: EventLog, accepted: dict[str, float]) -> None:
        self.cfg = cfg
        self.aws = aws
        self.store = store
        self.orch = orch
        self.events = events
        self.accepted = accepted
        self.policy = Backoff(cfg.retry_attempts, cfg.retry_base, cfg.retry_cap)
        self.user_locks: collections.defaultdict[str, asyncio.Lock] = \
            collections.defaultdict(asyncio.Lock)
        self.inflight: set[asyncio.Task[None]] = set()
        self.messages: collections.OrderedDict[str, dict[str, Any]] = collections.OrderedDict()
        self.counters: collections.Counter[str] = collections.Counter()
        self.started_at = time.time()
        self.last_poll_at = 0.0
        self.last_poll_error = ""
        self.polling_since: float | None = None
        self.http: aiohttp.ClientSession | None = None

    # ------------------------------------------------------------------ loop
    async def run(self) -> None:
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15))
        poll_failures = 0
        try:
            while True:
                free = self.cfg.worker_concurrency - len(self.inflight)
                if free <= 0:
                    await asyncio.wait(self.inflight, return_when=asyncio.FIRST_COMPLETED)
                    continue
                self.polling_since = time.time()
                try:
                    r = await self.aws.sqs.receive_message(
                        QueueUrl=self.aws.queue_url, MaxNumberOfMessages=min(10, free),
                        WaitTimeSeconds=self.cfg.poll_wait,
                        MessageSystemAttributeNames=["ApproximateReceiveCount"])
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # moto down or throttled: back off, keep polling
                    self.counters["poll_errors"] += 1
                    self.last_poll_error = str(exc)[:200]
                    await asyncio.sleep(self.policy.delay(min(poll_failures, 5)) + 0.1)
                    poll_failures += 1
                    continue
                finally:
                    self.polling_since = None
                poll_failures = 0
                self.last_poll_error = ""
                self.last_poll_at = time.time()
                self.counters["polls"] += 1
                for msg in r.get("Messages", []):
                    task = asyncio.create_task(self.handle(msg))
                    self.inflight.add(task)
                    task.add_done_callback(self.inflight.discard)
        finally:
            for task in list(self.inflight):
                task.cancel()
            await asyncio.gather(*self.inflight, return_exceptions=True)
            await self.http.close()

    def _track(self, message_id: str, **fields: Any) -> dict[str, Any]:
        entry = self.messages.setdefault(message_id, {"message_id": message_id})
        entry.update(fields)
        self.messages.move_to_end(message_id)
        while len(self.messages) > TRACKED_MESSAGES:
            self.messages.popitem(last=False)
        return entry

    # --------------------------------------------------------------- message
    async def handle(self, msg: dict[str, Any]) -> None:
        receipt = msg["ReceiptHandle"]
        receives = int(msg.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        envelope: dict[str, Any] = {}
        try:
            envelope = json.loads(msg["Body"])
            message_id = str(envelope["message_id"])
            req = parse_email_body(str(envelope["body"]))
        except (ValueError, KeyError, TypeError, AttributeError, InstructionError) as exc:
            self.counters["rejected"] += 1
            mid = str(envelope.get("message_id", "")) if isinstance(envelope, dict) else ""
            if mid:
                self._track(mid, state="rejected", error=str(exc))
            self.events.emit("email-rejected", message_id=mid, error=str(exc)[:200])
            await self._delete(receipt)
            return
        track = self._track(message_id, user=req.user, state="received", deliveries=receives,
                            received_at=time.time(),
                            accepted_at=envelope.get("accepted_at",
                                                     self.accepted.get(message_id)))
        track.setdefault("first_received_at", track["received_at"])
        beat = asyncio.create_task(self._heartbeat(receipt))
        try:
            async with self.user_locks[req.user]:
                track["state"] = "processing"
                outcome = await retry(lambda: self._attempt(req, message_id, track),
                                      self.policy, retryable,
                                      on_retry=lambda n, wait, exc: self._on_retry(track, n,
                                                                                   wait, exc))
        except RetriesExhausted as exc:
            await self._give_up(msg, req, message_id, track, receives, exc.last)
            return
        except Exception as exc:  # a bug or a non-retryable AWS error: redelivery / redrive
            log.exception("message %s failed", message_id)
            self.counters["errors"] += 1
            track.update(state="error", error=str(exc)[:300])
            self.events.emit("message-error", track.get("session_id", ""), req.user,
                             message_id=message_id, error=str(exc)[:200])
            return
        finally:
            beat.cancel()
        await self._delete(receipt)
        track.update(outcome, done_at=time.time())
        self.counters[outcome["state"]] += 1
        self.events.emit(f"instruction-{outcome['state']}", outcome.get("session_id", ""),
                         req.user, message_id=message_id, commit=outcome.get("commit") or "",
                         **({"error": outcome["error"]} if outcome.get("error") else {}))

    def _on_retry(self, track: dict[str, Any], attempt: int, wait: float,
                  exc: BaseException) -> None:
        kind = "capacity" if isinstance(exc, CapacityRefused) else \
            "throttled" if is_throttle(exc) else type(exc).__name__
        self.counters[f"retry_{kind}"] += 1
        track.update(attempts=track.get("attempts", 0) + 1, last_retry=kind,
                     error=str(exc)[:200])
        self.events.counters["retry"] += 1

    async def _attempt(self, req: EmailRequest, message_id: str,
                       track: dict[str, Any]) -> dict[str, Any]:
        current = await self.store.lease(req.user)
        session = await self.store.get(current) if current else None
        if session is not None and message_id in session.get("message_ids", []):
            return {"state": "duplicate", "session_id": current}
        if session is not None and self.orch.lost(session):
            session = await self._reap(session)
        if session is None or session["status"] in ENDED:
            session = await self._open(req, message_id, current)
            if session is None:
                return {"state": "duplicate", "session_id": session_id_for(message_id)}
        sid = session["session_id"]
        track["session_id"] = sid
        container = await self.orch.acquire(sid, req.user, req.client)
        track.setdefault("container_ready_at", time.time())
        return await self._apply(container, sid, message_id, req.instruction)

    async def _open(self, req: EmailRequest, message_id: str,
                    replacing: str | None) -> dict[str, Any] | None:
        """Open the session this email names; None when the email was already handled."""
        sid = session_id_for(message_id)
        if not await self.store.claim(req.user, sid, replacing):
            raise LostRace(f"lease of {req.user} changed")
        if await self.store.create(sid, req.user, req.client, message_id):
            self.events.emit("session-created", sid, req.user, message_id=message_id)
            return await self.store.get(sid)
        existing = await self.store.get(sid)  # this email opened it before (a redelivery)
        if existing is None:
            raise LostRace(f"session {sid} vanished")
        if message_id in existing.get("message_ids", []) or existing["status"] in ENDED:
            await self.store.release(req.user, sid)  # never leave a lease on a dead session
            return None
        return existing

    async def _reap(self, session: dict[str, Any]) -> dict[str, Any] | None:
        """End a session whose container is gone (e.g. a lost write while it ended)."""
        sid, user = session["session_id"], session["user_id"]
        ended = await self.store.transition(sid, "expired", ("starting", "active"),
                                            end_reason="container-lost")
        if ended is not None:
            await self.store.release(user, sid)
            self.events.emit("session-expired", sid, user, reason="container-lost")
        return ended or await self.store.get(sid)

    async def _apply(self, c: Container, sid: str, message_id: str,
                     instruction: str) -> dict[str, Any]:
        assert self.http is not None
        async with self.http.post(f"{c.url}{CONTROL}/apply", json={"message_id": message_id,
                                                          "instruction": instruction}) as r:
            body = await r.json()
            if r.status == 422:
                await self.store.note_error(sid, body.get("error", "rejected"))
                return {"state": "rejected", "session_id": sid, "error": body.get("error")}
            if r.status != 200:
                raise ContainerUnavailable(f"apply answered HTTP {r.status}")
        if body.get("duplicate"):
            # the container had it already: still "applied" when no one had recorded it
            # (an earlier attempt applied it, then its record_applied was throttled)
            recorded = await self.store.record_applied(sid, message_id, body.get("commit"))
            return {"state": "applied" if recorded else "duplicate", "session_id": sid,
                    "commit": body.get("commit")}
        recorded = await self.store.record_applied(sid, message_id, body.get("commit"))
        return {"state": "applied" if recorded else "duplicate", "session_id": sid,
                "commit": body.get("commit"), "paths": body.get("paths", []),
                "applied_at": time.time()}

    async def _give_up(self, msg: dict[str, Any], req: EmailRequest, message_id: str,
                       track: dict[str, Any], receives: int, last: BaseException) -> None:
        receipt = msg["ReceiptHandle"]
        if receives < self.cfg.max_receives:
            self.counters["deferred"] += 1
            track.update(state="retrying", error=str(last)[:200])
            self.events.emit("message-deferred", track.get("session_id", ""), req.user,
                             message_id=message_id, delivery=receives, error=str(last)[:200])
            with contextlib.suppress(Exception):
                await self.aws.sqs.change_message_visibility(
                    QueueUrl=self.aws.queue_url, ReceiptHandle=receipt,
                    VisibilityTimeout=self.cfg.redelivery_delay)
            return
        sid = track.get("session_id")
        if sid:
            failed = await self.store.transition(sid, "failed", ("pending",),
                                                 end_reason=f"gave up: {last}"[:300])
            if failed is not None:
                await self.store.release(req.user, sid)
                self.events.emit("session-failed", sid, req.user, reason=str(last)[:200])
        await self.aws.sqs.send_message(QueueUrl=self.aws.dlq_url, MessageBody=msg["Body"])
        await self._delete(receipt)
        self.counters["dead_lettered"] += 1
        track.update(state="failed", error=str(last)[:200], done_at=time.time())
        self.events.emit("message-dead-lettered", sid or "", req.user, message_id=message_id,
                         deliveries=receives)

    async def _heartbeat(self, receipt: str) -> None:
        period = max(1.0, self.cfg.visibility_timeout / 2)
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await self.aws.sqs.change_message_visibility(
                    QueueUrl=self.aws.queue_url, ReceiptHandle=receipt,
                    VisibilityTimeout=self.cfg.visibility_timeout)

    async def _delete(self, receipt: str) -> None:
        await self.aws.sqs.delete_message(QueueUrl=self.aws.queue_url, ReceiptHandle=receipt)

    # ---------------------------------------------------------------- health
    async def health(self) -> dict[str, Any]:
        now = time.time()
        age = now - self.last_poll_at if self.last_poll_at else None
        # Fresh if a poll returned lately or one is under way (a long poll lasts poll_wait).
        stale = min(x for x in (age, None if self.polling_since is None
                                else now - self.polling_since, float("inf"))
                    if x is not None) > self.cfg.poll_wait + 15
        queue: dict[str, Any] = {}
        with contextlib.suppress(Exception):
            for name, url in (("intake", self.aws.queue_url), ("dlq", self.aws.dlq_url)):
                a = (await self.aws.sqs.get_queue_attributes(
                    QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                                  "ApproximateNumberOfMessagesNotVisible"]))
                queue[name] = {"visible": int(a["Attributes"]["ApproximateNumberOfMessages"]),
                               "in_flight": int(a["Attributes"][
                                   "ApproximateNumberOfMessagesNotVisible"])}
        status = "ok" if not stale and not self.last_poll_error else "degraded"
        return {"status": status, "polls": self.counters["polls"],
                "last_poll_age_s": None if age is None else round(age, 2),
                "last_poll_error": self.last_poll_error, "in_flight": len(self.inflight),
                "counters": dict(self.counters), "queue": queue,
                "uptime_s": round(time.time() - self.started_at, 1)}
