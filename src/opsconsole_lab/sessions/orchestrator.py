"""The orchestrator: an ECS service's desired count, made real with local processes.

moto records an ECS service's desired count but runs nothing, so this module is the
scheduler: each live session gets one edit-container process
(``python -m opsconsole_lab.sessions.container``), the service's desired count on
moto always equals the number of session containers, and:

- capacity: beyond ``max_capacity`` containers a request is refused (hermes backs off);
- health: a container that dies (or stops answering ``/health`` three times) is
  restarted with the same workspace — desired count unchanged, like ECS replacing a
  task — until it crashes ``restart_limit`` times in a minute, then its session fails;
- idle: a container that exits by itself (exit 0, reported idle) ends its session as
  ``expired`` and desired count goes down;
- external scale-in: when someone lowers the desired count on ECS (any ECS client, or
  ``scale_to`` from the control API), the most idle containers are stopped until the
  counts agree; a desired count raised from outside is written back (sessions, not
  ECS, decide demand). ECS has no conditional update, so an outside write that lands
  between one of our describe/update pairs (one round trip) is lost — last writer
  wins, as with any read-modify-write scaler; ``scale_to`` holds our lock and cannot
  be lost that way;
- ECS tasks: every container process is one ECS task (``run_task`` when it starts,
  ``stop_task`` when it exits), its ARN in the session's DynamoDB item (``task_arn``), so
  ECS ``describe_tasks`` / ``list_tasks`` tell the truth. A task someone else stops (ECS
  ``stop_task`` from any client) is noticed by the reconcile loop: if the session ended
  meanwhile in DynamoDB its container stops; otherwise the container is restarted with its
  workspace on a new task, as an ECS service replaces a stopped task;
- metrics go to CloudWatch on moto (see ``metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from .aws import Aws
from .backoff import Backoff, is_throttle, retry
from .config import StackConfig
from .events import EventLog
from .metrics import MetricsPublisher
from .store import LIVE, SessionStore

log = logging.getLogger("sessions.orchestrator")
CONTAINER_MODULE = "opsconsole_lab.sessions.container"
HEALTH_FAILURES_BEFORE_KILL = 3


class CapacityRefused(Exception):
    """All ``max_capacity`` slots are taken; ask again later."""


class ContainerUnavailable(Exception):
    """The session's container is starting, restarting or did not come up in time."""


class SessionGone(Exception):
    """The session ended (or was never live) while we were working on it."""


@dataclass
class Container:
    session_id: str
    user: str
    client: str
    state: str = "starting"  # starting | running | restarting | stopping
    proc: asyncio.subprocess.Process | None = None
    pid: int = 0
    port: int = 0
    first_started_at: float = field(default_factory=time.time)
    started_at: float = 0.0
    task_mono: float = 0.0
    restarts: int = 0
    crashes: list[float] = field(default_factory=list)
    stop_reason: str = ""
    exit_report: dict[str, Any] | None = None
    health_failures: int = 0
    idle_s: float | None = None
    activated: bool = False
    gone: str = ""
    task_arn: str = ""
    ready: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.returncode is None

    def view(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "user": self.user, "client": self.client,
                "state": self.state, "pid": self.pid, "port": self.port,
                "restarts": self.restarts, "started_at": self.started_at,
                "first_started_at": self.first_started_at, "idle_s": self.idle_s,
                "task_arn": self.task_arn}


def container_processes(workspaces_root: str) -> dict[str, psutil.Process]:
    """Live edit-container processes working under ``workspaces_root``, by session id.

    Found through the process table, not our own records, so a check built on it also
    catches containers the orchestrator lost track of.
    """
    found: dict[str, psutil.Process] = {}
    for p in psutil.process_iter(["cmdline", "status"]):
        try:
            cmd = p.info["cmdline"] or []
            if CONTAINER_MODULE not in cmd or p.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            args = dict(itertools.pairwise(cmd))
            if args.get("--workspace", "").startswith(workspaces_root + os.sep):
                found[args.get("--session", "")] = p
        except (psutil.Error, TypeError):
            continue
    return found


class Orchestrator:
    def __init__(self, cfg: StackConfig, aws: Aws, store: SessionStore, events: EventLog,
                 metrics: MetricsPublisher) -> None:
        self.cfg = cfg
        self.aws = aws
        self.store = store
        self.events = events
        self.metrics = metrics
        self.containers: dict[str, Container] = {}
        self.lock = asyncio.Lock()
        self.desired = 0
        self.ecs_desired: int | None = None
        self.ecs_written: int | None = None  # the last desired count we wrote to ECS
        self.external_target: int | None = None
        self._reconcile_now = asyncio.Event()
        self.peak_running = 0
        self.tasks_started = 0
        self.task_seconds = 0.0
        self.billed_seconds = 0.0
        self.finalizing: set[str] = set()
        self.report_base = ""  # set by the stack once its HTTP port is known
        self.http: aiohttp.ClientSession | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self._watchers: set[asyncio.Task[None]] = set()
        self._aws_retry = Backoff(5, 0.1, 2.0)

    # ------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        self.cfg.containers_dir.mkdir(parents=True, exist_ok=True)
        self.cfg.workspaces.mkdir(parents=True, exist_ok=True)
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2))
        await asyncio.to_thread(self._stop_strays)
        await self._end_stale_sessions()
        async with self.lock:
            await self._set_desired_locked(0, "start")
        self._loop_task = asyncio.create_task(self._reconcile_loop())

    def _stop_strays(self) -> None:
        """Containers left by a previous run of this stack (killed with -9) are stopped."""
        strays = list(container_processes(str(self.cfg.workspaces)).values())
        for p in strays:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        _, alive = psutil.wait_procs(strays, timeout=3)
        for p in alive:
            with contextlib.suppress(psutil.Error):
                p.kill()
        if strays:
            self.events.emit("strays-stopped", count=len(strays))

    async def _end_stale_sessions(self) -> None:
        """Sessions a previous run left starting/active have no container any more."""
        for s in await self.store.scan():
            if s["status"] not in ("starting", "active"):
                continue
            if await self.store.transition(s["session_id"], "expired", ("starting", "active"),
                                           end_reason="stack-restart"):
                await self.store.release(s["user_id"], s["session_id"])
                self.events.emit("session-expired", s["session_id"], s["user_id"],
                                 reason="stack-restart")

    async def shutdown(self) -> None:
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        await asyncio.gather(*(self.stop_session(sid, "shutdown")
                               for sid in list(self.containers)), return_exceptions=True)
        if self.http is not None:
            await self.http.close()

    # --------------------------------------------------------------- capacity
    async def acquire(self, session_id: str, user: str, client: str) -> Container:
        """The session's ready container, started if needed.

        Raises CapacityRefused (no slot), ContainerUnavailable (not ready in time) or
        SessionGone (the session is no longer live). All three are worth retrying.
        """
        async with self.lock:
            c = self.containers.get(session_id)
            if c is None:
                if len(self.containers) >= self.cfg.max_capacity:
                    self.metrics.count("CapacityRefused")
                    self.events.counters["capacity-refused"] += 1
                    raise CapacityRefused(f"{len(self.containers)}/{self.cfg.max_capacity} "
                                          "containers running")
                if await self.store.transition(session_id, "starting",
                                               ("pending", "starting")) is None:
                    raise SessionGone(session_id)
                c = Container(session_id, user, client)
                self.containers[session_id] = c
                self.events.emit("session-starting", session_id, user)
                await self._set_desired_locked(len(self.containers), "session-start")
                try:
                    await self._spawn(c)
                except OSError as exc:  # could not even exec: give the slot back
                    del self.containers[session_id]
                    await self._set_desired_locked(len(self.containers), "spawn-failed")
                    await self.store.transition(session_id, "pending", ("starting",))
                    raise ContainerUnavailable(f"cannot start a container: {exc}") from exc
                await self._record_task(c)
        try:
            await asyncio.wait_for(c.ready.wait(), self.cfg.container_start_timeout)
        except TimeoutError as exc:
            raise ContainerUnavailable(f"container of {session_id} not ready") from exc
        if c.gone:
            raise SessionGone(f"{session_id}: {c.gone}")
        if not c.activated:
            active = await self.store.transition(
                session_id, "active", ("starting", "active"), active_at=time.time(),
                container_pid=c.pid, container_port=c.port, task_arn=c.task_arn)
            if active is None:  # ended (by someone else) while its container started
                await self.stop_session(session_id, "session-ended")
                raise SessionGone(session_id)
            c.activated = True
            self.events.emit("session-active", session_id, user, pid=c.pid,
                             start_s=round(time.time() - c.first_started_at, 3))
            self._gauges()
        return c

    def get(self, session_id: str) -> Container | None:
        return self.containers.get(session_id)

    def lost(self, session: dict[str, Any]) -> bool:
        """A session DynamoDB calls starting/active that no container of ours serves.

        Only hermes asks for containers, one message per user at a time, so for a
        session of the user it is working on this is never a transition in progress
        (unless the container is being finalized right now).
        """
        sid = session["session_id"]
        return session["status"] in ("starting", "active") and sid not in self.containers \
            and sid not in self.finalizing

    # ---------------------------------------------------------------- processes
    async def _spawn(self, c: Container) -> None:
        ready_file = self.cfg.containers_dir / f"{c.session_id}.ready.json"
        ready_file.unlink(missing_ok=True)
        workspace = self.cfg.workspaces / c.user
        cmd = [sys.executable, "-m", CONTAINER_MODULE, "--session", c.session_id,
               "--user", c.user, "--workspace", str(workspace), "--ready-file", str(ready_file),
               "--idle-timeout", str(self.cfg.idle_timeout), "--parent-pid", str(os.getpid()),
               "--report-url", f"{self.report_base}/internal/containers/{c.session_id}/exit"]
        with open(self.cfg.containers_dir / f"{c.session_id}.log", "ab") as logf:
            proc = await asyncio.create_subprocess_exec(
                *cmd, stdin=asyncio.subprocess.DEVNULL, stdout=logf, stderr=logf,
                start_new_session=True)
        c.proc, c.pid, c.port = proc, proc.pid, 0
        c.task_arn = ""
        try:
            c.task_arn = await retry(lambda: self.aws.run_task(c.session_id), self._aws_retry,
                                     is_throttle)
        except Exception as exc:  # the container serves anyway; ECS just does not show it
            log.warning("run_task for %s failed: %s", c.session_id, exc)
        c.started_at, c.task_mono = time.time(), time.monotonic()
        c.ready.clear()
        c.health_failures = 0
        c.exit_report = None
        self.tasks_started += 1
        self.peak_running = max(self.peak_running, self._alive_count())
        for coro in (self._watch(c, proc), self._await_ready(c, proc, ready_file)):
            task = asyncio.create_task(coro)
            self._watchers.add(task)
            task.add_done_callback(self._watchers.discard)

    def _alive_count(self) -> int:
        return sum(1 for c in self.containers.values() if c.alive)

    async def _await_ready(self, c: Container, proc: asyncio.subprocess.Process,
                           ready_file: Path) -> None:
        deadline = time.monotonic() + self.cfg.container_start_timeout
        assert self.http is not None
        while time.monotonic() < deadline and proc.returncode is None and c.proc is proc:
            try:
                port = json.loads(ready_file.read_text())["port"]
                async with self.http.get(f"http://127.0.0.1:{port}/health") as r:
                    if r.status == 200:
                        c.port, c.state = port, "running"
                        c.ready.set()
                        self.events.emit("container-ready", c.session_id, c.user, pid=c.pid,
                                         port=port, boot_s=round(time.monotonic() - c.task_mono, 3))
                        return
            except (FileNotFoundError, ValueError, KeyError, aiohttp.ClientError, TimeoutError):
                pass
            await asyncio.sleep(0.05)
        if proc.returncode is None and c.proc is proc:
            self.events.emit("container-start-timeout", c.session_id, c.user, pid=c.pid)
            with contextlib.suppress(ProcessLookupError):
                proc.kill()  # the watcher treats it as a crash: restart or fail

    async def _watch(self, c: Container, proc: asyncio.subprocess.Process) -> None:
        arn = c.task_arn
        rc = await proc.wait()
        ran = time.monotonic() - c.task_mono
        self.task_seconds += ran
        self.billed_seconds += max(60.0, ran)  # Fargate bills at least one minute per task
        if arn:
            try:
                await retry(lambda: self.aws.stop_task(arn, f"container exited {rc}"),
                            self._aws_retry, is_throttle)
            except Exception as exc:
                log.warning("stop_task %s failed: %s", arn, exc)
        if self.containers.get(c.session_id) is not c or c.proc is not proc:
            return
        if c.state == "stopping":
            await self._finalize(c, "expired", c.stop_reason or "stopped")
            return
        if rc == 0:
            reason = (c.exit_report or {}).get("reason", "idle")
            await self._finalize(c, "expired", reason)
            return
        now = time.monotonic()
        c.crashes = [t for t in c.crashes if now - t < 60] + [now]
        self.events.emit("container-died", c.session_id, c.user, pid=c.pid, exit_code=rc)
        if len(c.crashes) > self.cfg.restart_limit:
            await self._finalize(c, "failed", f"container crashed {len(c.crashes)} times in "
                                              f"60 s (last exit {rc})")
            return
        c.restarts += 1
        c.state = "restarting"
        c.ready.clear()
        self.metrics.count("ContainerRestarts")
        with contextlib.suppress(Exception):
            await self.store.bump_restarts(c.session_id)
        async with self.lock:
            if self.containers.get(c.session_id) is not c or c.state == "stopping":
                return  # stopped while we were deciding: nothing to restart
            await self._spawn(c)
        await self._record_task(c)
        self.events.emit("container-restarted", c.session_id, c.user, pid=c.pid,
                         restarts=c.restarts, task_arn=c.task_arn)

    async def _record_task(self, c: Container) -> None:
        """The container's ECS task on its session's item (``task_arn``), so anyone can
        find (and stop) the task of a session."""
        if not c.task_arn:
            return
        state = "active" if c.activated else "starting"
        with contextlib.suppress(Exception):
            await self.store.transition(c.session_id, state, (state,), task_arn=c.task_arn,
                                        container_pid=c.pid)

    async def _finalize(self, c: Container, status: str, reason: str) -> None:
        async with self.lock:
            if self.containers.get(c.session_id) is not c:
                return
            del self.containers[c.session_id]
            self.finalizing.add(c.session_id)
            c.gone = reason
            c.ready.set()  # wake anyone waiting for it: they see ``gone``
            await self._set_desired_locked(len(self.containers), reason)
        try:
            ended = await self.store.transition(c.session_id, status, LIVE, end_reason=reason,
                                                restarts=c.restarts)
            await self.store.release(c.user, c.session_id)
        finally:
            self.finalizing.discard(c.session_id)
        if ended is None:  # someone else ended it: learn how (the live counts)
            with contextlib.suppress(Exception):
                await self.store.get(c.session_id)
        else:
            self.events.emit(f"session-{status}", c.session_id, c.user, reason=reason,
                             lifetime_s=round(time.time() - c.first_started_at, 3))
            self.metrics.count("SessionsExpired" if status == "expired" else "SessionsFailed")
        self._gauges()

    async def stop_session(self, session_id: str, reason: str, grace: float = 5.0) -> bool:
        """Stop a session's container (SIGTERM, then SIGKILL); its session ends ``expired``."""
        c = self.containers.get(session_id)
        if c is None:
            return False
        c.state, c.stop_reason = "stopping", reason
        proc = c.proc
        if proc is not None and proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        else:
            await self._finalize(c, "expired", reason)  # between restarts: nothing to stop
        deadline = time.monotonic() + grace
        while session_id in self.containers and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return True

    def on_exit_report(self, session_id: str, report: dict[str, Any]) -> None:
        c = self.containers.get(session_id)
        if c is not None and report.get("pid") == c.pid:
            c.exit_report = report

    # ----------------------------------------------------------- desired count
    async def _observe_ecs_locked(self) -> int:
        """Read the service's desired count; a value we did not write is an external
        change, remembered as the target the next reconcile scales in to."""
        ecs = await self.aws.ecs_desired()
        self.ecs_desired = ecs
        if self.ecs_written is not None and ecs != self.ecs_written:
            self.external_target = ecs
            self.ecs_written = ecs
            self.events.emit("desired-changed-externally", ecs_desired=ecs,
                             desired=self.desired)
            self._reconcile_now.set()
        return ecs

    async def _set_desired_locked(self, n: int, reason: str, observe: bool = True) -> None:
        old = self.desired
        self.desired = n
        try:
            if observe:  # never overwrite an operator's change before reconcile saw it
                await retry(self._observe_ecs_locked, self._aws_retry, is_throttle)
            await retry(lambda: self.aws.set_ecs_desired(n), self._aws_retry, is_throttle)
            self.ecs_desired = self.ecs_written = n
        except Exception as exc:  # the reconcile loop writes it again
            log.warning("ECS desired count update failed: %s", exc)
        if n != old:
            direction = "up" if n > old else "down"
            self.metrics.count("ScaleUp" if n > old else "ScaleDown")
            self.events.emit(f"scale-{direction}", desired=n, previous=old, reason=reason)
        self._gauges()

    def _gauges(self) -> None:
        self.metrics.gauge("DesiredCount", self.desired)
        self.metrics.gauge("RunningContainers", self._alive_count())
        self.metrics.gauge("ActiveSessions", sum(1 for c in self.containers.values()
                                                 if c.activated))

    def _victims_locked(self, target: int) -> list[str]:
        """Sessions to stop to get down to ``target`` containers: the most idle first."""
        extra = len(self.containers) - target
        if extra <= 0:
            return []
        candidates = sorted(self.containers.values(),
                            key=lambda c: (c.state != "running", -(c.idle_s or 0)))
        return [c.session_id for c in candidates[:extra]]

    async def scale_to(self, desired: int) -> list[str]:
        """Operator scale-in through the control API: write the ECS desired count and pick
        the containers to stop under our lock, so none of our own writes can race it."""
        desired = max(0, desired)
        async with self.lock:
            await retry(lambda: self.aws.set_ecs_desired(desired), self._aws_retry, is_throttle)
            self.ecs_desired = self.ecs_written = desired
            self.external_target = None
            victims = self._victims_locked(desired)
        self.events.emit("scale-requested", desired=desired, stopping=len(victims))
        await asyncio.gather(*(self.stop_session(v, "scale-down") for v in victims))
        return victims

    async def reconcile(self) -> list[str]:
        """Follow an externally lowered desired count (stopping the most idle containers),
        write back one raised from outside, and health-check running containers."""
        async with self.lock:
            ecs = await self._observe_ecs_locked()
            target, self.external_target = self.external_target, None
            victims: list[str] = []
            if target is not None and target < len(self.containers):
                victims = self._victims_locked(target)
            elif ecs != self.desired and not any(c.state == "stopping"
                                                 for c in self.containers.values()):
                # (while a scale-in is stopping containers, their finalize writes converge)
                self.events.emit("desired-corrected", ecs_desired=ecs, desired=self.desired)
                await self._set_desired_locked(self.desired, "corrected", observe=False)
        if victims:
            await asyncio.gather(*(self.stop_session(v, "scale-down") for v in victims))
        await self._health_checks()
        await self._task_checks()
        return victims

    async def _task_checks(self) -> None:
        """Containers whose ECS task someone else stopped: stop the container when its
        session ended in DynamoDB (whoever stopped it ended it), else restart it on a new
        task (SIGKILL: the watcher restarts it like a crash, with its workspace)."""
        running = {c.task_arn: c for c in self.containers.values()
                   if c.state == "running" and c.task_arn and c.alive}
        if not running:
            return
        stopped = await self.aws.stopped_tasks(list(running))
        for arn, reason in stopped.items():
            c = running[arn]
            if c.task_arn != arn or not c.alive or c.proc is None:
                continue
            session = await self.store.get(c.session_id)
            ended = session is None or session["status"] not in LIVE
            self.events.emit("task-stopped-externally", c.session_id, c.user, task_arn=arn,
                             reason=reason, session_ended=ended)
            if ended:
                task = asyncio.create_task(self.stop_session(c.session_id, "task-stopped"))
                self._watchers.add(task)
                task.add_done_callback(self._watchers.discard)
            else:
                with contextlib.suppress(ProcessLookupError):
                    c.proc.kill()

    async def _health_checks(self) -> None:
        assert self.http is not None
        http = self.http

        async def check(c: Container) -> None:
            try:
                async with http.get(f"{c.url}/health") as r:
                    body = await r.json()
                    c.idle_s = body.get("idle_s")
                    c.health_failures = 0
                    return
            except (aiohttp.ClientError, TimeoutError, ValueError):
                c.health_failures += 1
            if c.health_failures >= HEALTH_FAILURES_BEFORE_KILL and c.alive and c.proc:
                self.events.emit("container-unhealthy", c.session_id, c.user, pid=c.pid)
                with contextlib.suppress(ProcessLookupError):
                    c.proc.kill()

        await asyncio.gather(*(check(c) for c in list(self.containers.values())
                               if c.state == "running" and c.port))

    async def _reconcile_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._reconcile_now.wait(), self.cfg.reconcile_interval)
            self._reconcile_now.clear()
            try:
                await self.reconcile()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("reconcile failed: %s", exc)

    # ------------------------------------------------------------------ views
    def status(self) -> dict[str, Any]:
        states = [c.state for c in self.containers.values()]
        return {"desired": self.desired, "ecs_desired": self.ecs_desired,
                "running": self._alive_count(), "containers_total": len(self.containers),
                "starting": states.count("starting"), "restarting": states.count("restarting"),
                "max_capacity": self.cfg.max_capacity, "peak_running": self.peak_running,
                "tasks_started": self.tasks_started,
                "containers": [c.view() for c in self.containers.values()]}

    def usage(self) -> dict[str, float]:
        now = time.monotonic()
        live = [now - c.task_mono for c in self.containers.values() if c.alive]
        return {"fargate_task_seconds": round(self.task_seconds + sum(live), 3),
                "fargate_billed_seconds": round(self.billed_seconds
                                                + sum(max(60.0, x) for x in live), 3),
                "task_vcpu": self.cfg.task_vcpu, "task_memory_gb": self.cfg.task_memory_gb,
                "tasks_started": self.tasks_started}

    async def orphans(self) -> dict[str, list[dict[str, Any]]]:
        """Containers without a live session, and live sessions without a container.

        Built from DynamoDB and the process table; a container that is starting or
        restarting right now is in transition, not an orphan.
        """
        sessions = {s["session_id"]: s for s in await self.store.scan()}
        procs = await asyncio.to_thread(container_processes, str(self.cfg.workspaces))
        orphan_containers = [
            {"session_id": sid, "pid": p.pid,
             "session_status": sessions.get(sid, {}).get("status", "unknown")}
            for sid, p in procs.items()
            if sessions.get(sid, {}).get("status") not in ("starting", "active")]
        transitioning = {sid for sid, c in self.containers.items()
                         if c.state in ("starting", "restarting")}
        orphan_sessions = [
            {"session_id": sid, "user": s["user_id"], "status": s["status"]}
            for sid, s in sessions.items()
            if s["status"] in ("starting", "active") and sid not in procs
            and sid not in transitioning]
        return {"containers": orphan_containers, "sessions": orphan_sessions}
