"""The sessions stack end to end, against a real moto server and real processes.

Email → SES → SQS → hermes → DynamoDB → edit-container process → git workspace →
preview through the router → idle expiry. Two stacks share one moto server (each with
its own resource prefix): a roomy one for lifecycle and routing, and a capacity-2 one
for concurrency and the creation burst.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
import pytest

from opsconsole.lab.ports import free_ports, listening
from opsconsole_lab.sessions.aws import LAB_AWS_KEY
from opsconsole_lab.sessions.client import (
    SessionFailed,
    SessionsClient,
    StackProcess,
    launch_stack,
    wait_for,
)
from opsconsole_lab.sessions.orchestrator import container_processes

from ...helpers import wait_until

IDLE = 3.0  # container idle timeout in these tests (5 min by default)
FAST = {"idle_timeout": IDLE, "poll_wait": 1, "reconcile_interval": 0.5,
        "metrics_interval": 0.5, "visibility_timeout": 5, "redelivery_delay": 1,
        "container_start_timeout": 15}


@pytest.fixture(scope="module")
def moto_url(tmp_path_factory: pytest.TempPathFactory) -> Any:
    [port] = free_ports(1)
    log = open(tmp_path_factory.mktemp("moto") / "moto.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                             str(port)], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: listening(port) or proc.poll() is not None, 20, f"moto on {url}")
    if proc.poll() is not None:
        pytest.fail(f"moto server exited instead of listening on {url}")
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()


def _aws(moto_url: str, service: str) -> Any:
    return aioboto3.Session(aws_access_key_id=LAB_AWS_KEY, aws_secret_access_key=LAB_AWS_KEY,
                            region_name="us-east-1").client(service, endpoint_url=moto_url)


@contextlib.asynccontextmanager
async def _stack(tmp: Path, moto_url: str, **options: Any) -> AsyncIterator[
        tuple[StackProcess, SessionsClient]]:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    async with launch_stack(tmp, moto_url, prefix=prefix, **{**FAST, **options}) as stack, \
            SessionsClient(stack.url) as sc:
        yield stack, sc
    # SIGTERM stopped every container and ended every live session
    assert container_processes(str(tmp / "workspaces")) == {}
    with open(tmp / "events.jsonl") as f:
        kinds = [json.loads(line)["kind"] for line in f]
    assert kinds[-1] == "stack-down"


@pytest.fixture(scope="module")
async def roomy(tmp_path_factory: pytest.TempPathFactory, moto_url: str) -> Any:
    async with _stack(tmp_path_factory.mktemp("sessions-a"), moto_url, max_capacity=6) as s:
        yield s


@pytest.fixture(scope="module")
async def tight(tmp_path_factory: pytest.TempPathFactory, moto_url: str) -> Any:
    async with _stack(tmp_path_factory.mktemp("sessions-b"), moto_url, max_capacity=2,
                      worker_concurrency=20, retry_attempts=6, retry_base=0.2, retry_cap=1.0,
                      max_receives=4) as s:
        yield s


async def _info(sc: SessionsClient) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(sc.base_url + "/api/info") as r:
        return await r.json()


async def _ddb_item(moto_url: str, table: str, sid: str) -> dict[str, Any]:
    async with _aws(moto_url, "dynamodb") as ddb:
        return (await ddb.get_item(TableName=table, Key={"session_id": {"S": sid}},
                                   ConsistentRead=True))["Item"]


async def _ecs_desired(moto_url: str, res: dict[str, str]) -> int:
    async with _aws(moto_url, "ecs") as ecs:
        found = await ecs.describe_services(cluster=res["cluster"], services=[res["service"]])
    return found["services"][0]["desiredCount"]


# --------------------------------------------------------------------- lifecycle
async def test_cold_start_then_idle_expiry(roomy: Any, moto_url: str) -> None:
    stack, sc = roomy
    res = (await _info(sc))["resources"]
    assert (await sc.counts())["running"] == 0 and await _ecs_desired(moto_url, res) == 0

    sent = await sc.send_email("alice", "create page about Cold Starts", client="acme")
    done = await sc.wait_message(sent["message_id"], timeout=30)
    cold_start = done["applied_at"] - sent["accepted_at"]
    assert done["state"] == "applied" and cold_start < 60
    sid = done["session_id"]

    # the session in DynamoDB: active, TTL set, found through the by_user GSI
    item = await _ddb_item(moto_url, res["table"], sid)
    assert item["status"]["S"] == "active" and item["client_id"]["S"] == "acme"
    assert sent["message_id"] in item["message_ids"]["SS"] and int(item["expires_at"]["N"])
    async with _aws(moto_url, "dynamodb") as ddb:
        ttl = await ddb.describe_time_to_live(TableName=res["table"])
        by_user = await ddb.query(TableName=res["table"], IndexName="by_user",
                                  KeyConditionExpression="user_id = :u",
                                  ExpressionAttributeValues={":u": {"S": "alice"}})
    assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
    assert [i["session_id"]["S"] for i in by_user["Items"]] == [sid]

    # preview through the router, the file on disk and in git
    status, page = await sc.preview(sid, "pages/cold-starts.html")
    assert status == 200 and "<h1>Cold Starts</h1>" in page
    status, index = await sc.preview(sid)
    assert status == 200 and "pages/cold-starts.html" in index
    workspace = stack.state_dir / "workspaces" / "alice"
    assert "Cold Starts" in (workspace / "site/pages/cold-starts.html").read_text()
    log = await sc.workspace_log("alice")
    assert log[0]["sha"] == done["commit"] and log[-1]["subject"] == "init workspace"
    assert await _ecs_desired(moto_url, res) == 1
    counts = await sc.counts()
    assert (counts["desired"], counts["running"], counts["sessions"]["active"]) == (1, 1, 1)

    # idle: the container exits by itself, the session expires, desired count goes to 0
    ended = await sc.wait_status(sid, "expired", timeout=IDLE + 15)
    assert ended["end_reason"] == "idle"
    assert ended["ended_at"] - ended["applied_at"] >= IDLE - 0.5
    assert await _ecs_desired(moto_url, res) == 0 and (await sc.counts())["running"] == 0
    assert (await sc.preview(sid))[0] == 410
    async with _aws(moto_url, "cloudwatch") as cw:
        async def metrics() -> set[str] | None:
            names = {m["MetricName"] for m in
                     (await cw.list_metrics(Namespace=res["namespace"]))["Metrics"]}
            wanted = {"ActiveSessions", "RunningContainers", "DesiredCount", "ScaleUp",
                      "ScaleDown", "SessionsExpired"}
            return names if wanted <= names else None

        await wait_for(metrics, 10, "CloudWatch metrics on moto")
    await sc.wait_no_orphans()


async def test_persistence_across_forced_scale_down(roomy: Any, moto_url: str) -> None:
    stack, sc = roomy
    res = (await _info(sc))["resources"]
    first = await sc.wait_message((await sc.send_email("bob", "create page about Tides"))
                                  ["message_id"])
    warm_sent = await sc.send_email("bob", "create page Moon: it pulls the sea")
    warm = await sc.wait_message(warm_sent["message_id"])
    assert warm["session_id"] == first["session_id"]  # same session, warm container
    assert warm["applied_at"] - warm_sent["accepted_at"] < 5

    scaled = await sc.scale_down(0)
    assert first["session_id"] in scaled["stopped"]
    ended = await sc.wait_status(first["session_id"], "expired", timeout=10)
    assert ended["end_reason"] == "scale-down"
    assert await _ecs_desired(moto_url, res) == 0
    assert (stack.state_dir / "workspaces/bob/site/pages/moon.html").exists()

    again = await sc.wait_message((await sc.send_email("bob", "update page Moon: and tides"))
                                  ["message_id"])
    assert again["session_id"] != first["session_id"]  # a new session resumes the workspace
    status, page = await sc.preview(again["session_id"], "pages/moon.html")
    assert status == 200 and "and tides" in page
    assert (await sc.preview(again["session_id"], "pages/tides.html"))[0] == 200
    subjects = [c["subject"] for c in await sc.workspace_log("bob")]
    assert subjects == ["update page Moon: and tides", "create page Moon: it pulls the sea",
                        "create page about Tides", "init workspace"]
    sessions = await sc.sessions(user="bob")
    assert [s["status"] for s in sessions] == ["active", "expired"]


async def test_duplicate_deliveries_do_not_double_create(roomy: Any) -> None:
    _, sc = roomy
    sent = await sc.send_email("erin", "create page about Echoes", deliveries=3)
    first = await sc.wait_message(sent["message_id"])
    sessions = await sc.sessions(user="erin")
    assert [s["session_id"] for s in sessions] == [first["session_id"]]
    assert sessions[0]["instructions"] == 1 and sessions[0]["message_ids"] == [sent["message_id"]]

    async def all_three_handled() -> dict[str, Any] | None:
        hermes = (await sc.status())["hermes"]
        return hermes if hermes.get("duplicate", 0) >= 2 else None

    await wait_for(all_three_handled, 15, "both redeliveries to be recognised")
    subjects = [c["subject"] for c in await sc.workspace_log("erin")]
    assert subjects == ["create page about Echoes", "init workspace"]


async def test_routing_every_route_and_websocket(roomy: Any) -> None:
    _, sc = roomy
    done = await sc.wait_message((await sc.send_email("carol", "create page about Routes"))
                                 ["message_id"])
    sid = done["session_id"]
    assert (await sc.health("/api/health"))[0] == 200
    status, hermes = await sc.health("/hermes/health")
    assert status == 200 and hermes["status"] == "ok" and "intake" in hermes["queue"]
    for path in ("", "/", "/index.html", "/pages/routes.html"):
        async with aiohttp.ClientSession() as http, \
                http.get(f"{sc.base_url}/session/{sid}{path}") as r:
            assert r.status == 200, path
            assert f'<base href="/session/{sid}/">' in await r.text()
    status, health = await sc.health(f"/session/{sid}/health")
    assert status == 200 and health["session_id"] == sid and health["user"] == "carol"
    assert (await sc.health("/session/s-000000000000"))[0] == 404
    assert (await sc.health(f"/session/{sid}/pages/nope.html"))[0] == 404
    assert (await sc.health("/ws/hmr"))[0] == 400
    assert (await sc.health(f"/session/{sid}/_ctl/log"))[0] == 404  # never proxied

    async with aiohttp.ClientSession() as http:
        for url in (sc.ws_url(sid), f"{sc.base_url}/session/{sid}/ws/hmr".replace("http", "ws")):
            async with http.ws_connect(url) as ws:
                hello = await ws.receive_json(timeout=5)
                assert hello["type"] == "hello" and hello["session_id"] == sid
                await ws.send_json({"type": "ping"})
                assert (await ws.receive_json(timeout=5))["type"] == "pong"
        async with http.ws_connect(sc.ws_url(sid)) as ws:
            await ws.receive_json(timeout=5)
            edit = await sc.send_email("carol", "update page Routes: live reload")
            reload = await ws.receive_json(timeout=15)
            applied = await sc.wait_message(edit["message_id"])
            assert reload["type"] == "reload" and reload["commit"] == applied["commit"]
            assert "pages/routes.html" in reload["paths"]

    rejected = await sc.send_email("carol", "paint the fence")
    with pytest.raises(SessionFailed, match="rejected"):
        await sc.wait_message(rejected["message_id"])


async def test_killed_container_is_restarted_with_its_data(roomy: Any) -> None:
    _, sc = roomy
    done = await sc.wait_message((await sc.send_email("dave", "create page about Crashes"))
                                 ["message_id"])
    sid = done["session_id"]
    killed = await sc.kill_container(sid)

    async def restarted() -> dict[str, Any] | None:
        s = await sc.session(sid)
        c = (s or {}).get("container") or {}
        return s if c.get("pid") not in (None, killed) and c.get("state") == "running" else None

    s = await wait_for(restarted, 15, "the container to be restarted")
    assert s["status"] == "active" and s["container"]["restarts"] == 1 and s["restarts"] == 1
    status, page = await sc.preview(sid, "pages/crashes.html")
    assert status == 200 and "Crashes" in page
    after = await sc.wait_message((await sc.send_email("dave", "create page about Recovery"))
                                  ["message_id"])
    assert after["session_id"] == sid  # the same session carries on
    assert [c["subject"] for c in await sc.workspace_log("dave")][:2] == [
        "create page about Recovery", "create page about Crashes"]
    kinds = [e["kind"] for e in await sc.events()]
    assert "container-died" in kinds and "container-restarted" in kinds
    await sc.wait_no_orphans()


async def test_desired_count_set_on_ecs_is_followed(roomy: Any, moto_url: str) -> None:
    """Any ECS client lowering the service's desired count scales containers in;
    raising it without sessions behind it is corrected back (sessions decide demand)."""
    _, sc = roomy
    res = (await _info(sc))["resources"]
    # ECS has no conditional update: an outside write racing one of the orchestrator's
    # own (a container of an earlier test ending) would be lost, so clear those first.
    await sc.scale_down(0)
    await wait_for(lambda: _desired_is(sc, 0), 10, "earlier sessions to end")
    async with _aws(moto_url, "ecs") as ecs:
        done = await sc.wait_message((await sc.send_email("frank", "create page about Ebb"))
                                     ["message_id"])
        await ecs.update_service(cluster=res["cluster"], service=res["service"],
                                 desiredCount=0)
        ended = await sc.wait_status(done["session_id"], "expired", timeout=10)
        assert ended["end_reason"] == "scale-down"
        await wait_for(lambda: _desired_is(sc, 0), 10, "every container to stop")
        await ecs.update_service(cluster=res["cluster"], service=res["service"],
                                 desiredCount=3)

        async def corrected() -> bool:
            return await _ecs_desired(moto_url, res) == 0

        await wait_for(corrected, 10, "the desired count to be written back to 0")
    assert any(e["kind"] == "desired-changed-externally" and e["ecs_desired"] == 3
               for e in await sc.events())
    assert (await sc.counts())["desired"] == 0
    await sc.wait_no_orphans()


async def _desired_is(sc: SessionsClient, n: int) -> bool:
    counts = await sc.counts()
    return counts["running"] == counts["desired"] == n


async def test_stack_killed_then_restarted_leaves_nothing_behind(
        tmp_path: Path, moto_url: str) -> None:
    prefix = f"t{uuid.uuid4().hex[:8]}"
    workspaces = str(tmp_path / "workspaces")
    async with launch_stack(tmp_path, moto_url, prefix=prefix, **FAST) as stack, \
            SessionsClient(stack.url) as sc:
        done = await sc.wait_message((await sc.send_email("gina", "create page about Phoenix"))
                                     ["message_id"])
        stack.proc.kill()  # kill -9: no chance to stop its containers
        await stack.proc.wait()

        async def gone() -> bool:  # the container notices its parent died and exits
            return not await asyncio.to_thread(container_processes, workspaces)

        await wait_for(gone, 10, "the orphaned container to exit")
    async with launch_stack(tmp_path, moto_url, prefix=prefix, **FAST) as stack, \
            SessionsClient(stack.url) as sc:
        old = await sc.session(done["session_id"])
        assert old is not None and (old["status"], old["end_reason"]) == ("expired",
                                                                          "stack-restart")
        again = await sc.wait_message((await sc.send_email(
            "gina", "update page Phoenix: rises again"))["message_id"])
        assert again["session_id"] != done["session_id"]
        status, page = await sc.preview(again["session_id"], "pages/phoenix.html")
        assert status == 200 and "rises again" in page
        await sc.wait_no_orphans()
    assert not container_processes(workspaces)


# ------------------------------------------------------------------ capacity
class ProcessSampler:
    """Counts edit-container processes from the process table while a test runs."""

    def __init__(self, workspaces: Path) -> None:
        self.root = str(workspaces)
        self.peak = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            n = len(await asyncio.to_thread(container_processes, self.root))
            self.peak = max(self.peak, n)
            await asyncio.sleep(0.05)

    async def __aenter__(self) -> ProcessSampler:
        self._task = asyncio.create_task(self._run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def test_three_users_isolated_within_capacity(tight: Any) -> None:
    stack, sc = tight
    users = ["ua", "ub", "uc"]
    async with ProcessSampler(stack.state_dir / "workspaces") as sampler:
        sent = await asyncio.gather(*(sc.send_email(u, f"create page about Topic {u}")
                                      for u in users))
        done = await asyncio.gather(*(sc.wait_message(s["message_id"], timeout=60)
                                      for s in sent))
        ended = await asyncio.gather(*(sc.wait_status(d["session_id"], "expired", timeout=30)
                                       for d in done))
    assert sampler.peak <= 2 and (await sc.counts())["peak_running"] <= 2
    assert (await sc.status())["hermes"].get("retry_capacity", 0) >= 1
    # the third user had to wait for a slot, freed by an idle expiry
    by_start = sorted(ended, key=lambda s: s["active_at"])
    assert by_start[2]["active_at"] >= min(s["ended_at"] for s in by_start[:2]) - 0.5
    for s in ended:  # independent expiry: each after its own idle period
        assert s["end_reason"] == "idle" and s["ended_at"] - s["applied_at"] >= IDLE - 0.5
    for u in users:  # isolated workspaces: each sees only its own page
        pages = sorted(p.name for p in (stack.state_dir / f"workspaces/{u}/site/pages").iterdir())
        assert pages == [f"topic-{u}.html"]
    await sc.wait_no_orphans()


async def test_burst_of_twenty_with_capacity_two(tight: Any, moto_url: str) -> None:
    stack, sc = tight
    users = [f"burst{i:02d}" for i in range(20)]
    async with ProcessSampler(stack.state_dir / "workspaces") as sampler:
        sent = await asyncio.gather(*(sc.send_email(u, "create page about Bursts")
                                      for u in users))

        async def settled() -> list[dict[str, Any]] | None:
            ms = [await sc.message(s["message_id"]) for s in sent]
            return ms if all(m["state"] in ("applied", "failed") for m in ms) else None

        outcomes = await wait_for(settled, 60, "all 20 emails to succeed or fail", 0.5)

        async def all_ended() -> list[dict[str, Any]] | None:
            ss = [s for s in await sc.sessions() if s["user_id"].startswith("burst")]
            return ss if len(ss) == 20 and all(s["status"] in ("expired", "failed")
                                               for s in ss) else None

        sessions = await wait_for(all_ended, 30, "every burst session to end")
    applied = [m for m in outcomes if m["state"] == "applied"]
    failed = [m for m in outcomes if m["state"] == "failed"]
    assert len(applied) >= 2 and failed, (len(applied), len(failed))
    assert sampler.peak <= 2 and (await sc.counts())["peak_running"] <= 2
    status = {s["session_id"]: s for s in sessions}
    for m in applied:
        assert status[m["session_id"]]["status"] == "expired"
    for m in failed:
        assert status[m["session_id"]]["status"] == "failed"
        assert status[m["session_id"]]["end_reason"].startswith("gave up")
    info = await _info(sc)
    async with _aws(moto_url, "sqs") as sqs:
        dlq = await sqs.get_queue_attributes(QueueUrl=info["dlq_url"],
                                             AttributeNames=["ApproximateNumberOfMessages"])
        main = await sqs.get_queue_attributes(
            QueueUrl=info["queue_url"], AttributeNames=["ApproximateNumberOfMessages",
                                                        "ApproximateNumberOfMessagesNotVisible"])
    assert int(dlq["Attributes"]["ApproximateNumberOfMessages"]) == len(failed)
    assert main["Attributes"]["ApproximateNumberOfMessages"] == "0"
    assert main["Attributes"]["ApproximateNumberOfMessagesNotVisible"] == "0"
    counts = await sc.counts()
    assert (counts["desired"], counts["running"]) == (0, 0)
    assert counts["sessions"]["pending"] == counts["sessions"]["active"] == 0
    await sc.wait_no_orphans()
    cost = await sc.cost()
    assert cost["usage"]["ses_emails"] >= 20 and cost["total_usd"] > 0
