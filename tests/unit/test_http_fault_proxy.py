"""The HTTP fault proxy in process: botocore clients through it to a real moto (in a
thread), and the forward link to a real aiohttp server; every fault with its control."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aioboto3
import aiohttp
import pytest
from aiohttp import web
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError

from opsconsole.config import Inventory
from opsconsole.core.bus import EventBus
from opsconsole.errors import UserError
from opsconsole.faults import FaultContext, FaultLedger, FaultManager
from opsconsole.lab.ports import free_ports
from opsconsole.netproxy.aws_shapes import _cbor_map
from opsconsole.netproxy.http import AwsProxy, ForwardProxy, control_app
from opsconsole.netproxy.throttle_stats import throttle_available
from opsconsole.systems.aws.config import AwsTarget
from opsconsole.systems.aws.throttle import signing_name
from opsconsole.systems.previews.router_cut import router_cut_available

from ..helpers import async_wait_until

KEY = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing",
       "region_name": "us-east-1"}
ONE_RETRY = Config(retries={"mode": "standard", "total_max_attempts": 2})


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    [port] = free_ports(1)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


async def _serve(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    return runner, f"http://127.0.0.1:{runner.addresses[0][1]}"


@pytest.fixture
async def proxy(moto_url: str) -> AsyncIterator[dict[str, Any]]:
    aws, forward = AwsProxy(moto_url, rng=random.Random(7)), ForwardProxy()
    await aws.start()
    await forward.start()

    def app(handler: Any) -> web.Application:
        a = web.Application()
        a.router.add_route("*", "/{tail:.*}", handler)
        return a

    runners = [await _serve(app(aws.handle)), await _serve(app(forward.handle)),
               await _serve(control_app(aws, forward))]
    async with aiohttp.ClientSession() as http:
        yield {"aws": aws, "forward": forward, "aws_url": runners[0][1],
               "forward_url": runners[1][1], "control": runners[2][1], "http": http}
    for runner, _ in runners:
        await runner.cleanup()
    await forward.close()
    await aws.close()


async def _put(p: dict[str, Any], path: str, body: dict[str, Any]) -> tuple[int, Any]:
    async with p["http"].put(p["control"] + path, json=body) as r:
        return r.status, await r.json()


async def _delete(p: dict[str, Any], path: str) -> Any:
    async with p["http"].delete(p["control"] + path) as r:
        return await r.json()


def _client(p: dict[str, Any], service: str, config: Config | None = None) -> Any:
    return aioboto3.Session(**KEY).client(service, endpoint_url=p["aws_url"], config=config)


# (client, call, the code the service really throttles with, HTTP status)
CALLS = [
    ("dynamodb", "list_tables", "ProvisionedThroughputExceededException", 400),  # JSON 1.0
    ("sqs", "list_queues", "ThrottlingException", 400),  # JSON 1.0, query-compatible
    ("ecs", "list_clusters", "ThrottlingException", 400),  # JSON 1.1
    ("sts", "get_caller_identity", "ThrottlingException", 400),  # query XML
    ("cloudwatch", "list_metrics", "ThrottlingException", 400),  # query XML
    ("ec2", "describe_instances", "RequestLimitExceeded", 503),  # EC2 query
    ("s3", "list_buckets", "SlowDown", 503),  # REST XML
    ("lambda", "list_functions", "ThrottlingException", 429),  # REST JSON
]


@pytest.mark.parametrize(("name", "call", "code", "status"), CALLS, ids=[c[0] for c in CALLS])
async def test_throttle_answers_in_the_service_protocol_and_botocore_retries_it(
        proxy, name: str, call: str, code: str, status: int) -> None:
    service = signing_name(name)  # the credential scope's: monitoring for cloudwatch
    async with _client(proxy, name, ONE_RETRY) as client:
        await getattr(client, call)()  # the control: it passes to moto
        assert proxy["aws"].counts[service].passed == 1
        assert (await _put(proxy, f"/aws/throttle/{service}", {"fraction": 1.0}))[0] == 200
        with pytest.raises(ClientError) as caught:
            await getattr(client, call)()
    err = caught.value.response
    assert err["Error"]["Code"] == code
    assert err["ResponseMetadata"]["HTTPStatusCode"] == status
    assert err["ResponseMetadata"]["RetryAttempts"] == 1  # botocore judged it retryable
    counts = proxy["aws"].counts[service]
    assert counts.throttled == 2 and counts.passed == 1


async def test_a_fraction_throttles_about_that_share_and_only_that_service(proxy) -> None:
    await _put(proxy, "/aws/throttle/dynamodb", {"fraction": 0.5})
    attempts = 0
    async with _client(proxy, "dynamodb") as ddb, _client(proxy, "sqs") as sqs:
        for _ in range(30):  # legacy mode: DynamoDB's own 10 attempts
            attempts += (await ddb.list_tables())["ResponseMetadata"]["RetryAttempts"]
        assert (await sqs.list_queues())["ResponseMetadata"]["RetryAttempts"] == 0
    counts = proxy["aws"].counts["dynamodb"]
    assert counts.passed == 30 and counts.throttled == attempts > 0
    assert 0.25 < counts.throttled / (counts.passed + counts.throttled) < 0.75
    assert counts.throttled_by_operation == {"ListTables": attempts}
    assert proxy["aws"].counts["sqs"].throttled == 0
    assert (await _delete(proxy, "/aws/throttle/dynamodb")) == {"cleared": True}
    async with _client(proxy, "dynamodb") as ddb:  # healed: no retry at all
        for _ in range(10):
            assert (await ddb.list_tables())["ResponseMetadata"]["RetryAttempts"] == 0


async def test_a_window_ends_by_itself_and_star_means_every_service(proxy) -> None:
    async with _client(proxy, "ecs", Config(retries={"total_max_attempts": 1})) as ecs:
        await ecs.list_clusters()  # connected before the window opens (a loaded machine)
        await _put(proxy, "/aws/throttle/*", {"fraction": 1.0, "window_s": 2.0})
        with pytest.raises(ClientError, match="ThrottlingException"):
            await ecs.list_clusters()
        async def answered() -> bool:
            try:
                await ecs.list_clusters()
            except ClientError:
                return False
            return True

        await async_wait_until(answered, 10, "the throttle window to end", 0.1)
    async with proxy["http"].get(proxy["control"] + "/stats") as r:
        stats = await r.json()
    assert stats["aws"]["throttles"]["*"]["active"] is False


async def test_unsigned_requests_pass_even_under_a_throttle_on_everything(proxy) -> None:
    await _put(proxy, "/aws/throttle/*", {"fraction": 1.0})
    async with proxy["http"].get(proxy["aws_url"] + "/moto-api/") as r:
        assert r.status == 200
    assert proxy["aws"].counts["-"].throttled == 0


async def test_bad_throttle_requests_are_refused(proxy) -> None:
    assert (await _put(proxy, "/aws/throttle/dynamodb", {"fraction": 2}))[0] == 400
    assert (await _put(proxy, "/aws/throttle/dynamodb", {"fraction": 1, "window_s": 0}))[0] \
        == 400
    assert (await _put(proxy, "/aws/throttle/dynamodb", {}))[0] == 400
    assert proxy["aws"].rules == {}


async def test_a_dead_endpoint_closes_the_connection_as_a_direct_dial_would() -> None:
    [port] = free_ports(1)
    aws = AwsProxy(f"http://127.0.0.1:{port}")
    await aws.start()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", aws.handle)
    runner, url = await _serve(app)
    try:
        client = aioboto3.Session(**KEY).client("dynamodb", endpoint_url=url,
                                                config=Config(retries={"total_max_attempts": 1}))
        async with client as ddb:
            with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
                await ddb.list_tables()
        assert aws.counts["dynamodb"].upstream_errors == 1
    finally:
        await runner.cleanup()
        await aws.close()


def test_the_cbor_error_body_is_what_botocore_reads() -> None:
    from botocore.parsers import RpcV2CBORParser

    body = _cbor_map({"__type": "ThrottlingException", "message": "Rate exceeded" * 3})
    parsed = RpcV2CBORParser().parse({"status_code": 400, "body": body, "headers": {
        "smithy-protocol": "rpc-v2-cbor"}}, None)
    assert parsed["Error"]["Code"] == "ThrottlingException"
    assert parsed["Error"]["Message"] == "Rate exceeded" * 3


# ------------------------------------------------------------------ forward link
@pytest.fixture
async def container() -> AsyncIterator[str]:
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    async def hmr(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for msg in ws:
            await ws.send_str("echo:" + msg.data)
        return ws

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_get("/ws/hmr", hmr)
    runner, url = await _serve(app)
    yield url
    await runner.cleanup()


async def _via(p: dict[str, Any], url: str, timeout: float = 3.0) -> int | str:
    try:
        async with p["http"].get(url, proxy=p["forward_url"],
                                 timeout=aiohttp.ClientTimeout(total=timeout)) as r:
            await r.read()
            return r.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        return type(exc).__name__


async def _more(count, before: int) -> bool:
    return await count() > before


async def test_forward_cut_reset_and_drop_then_heal(proxy, container: str) -> None:
    assert await _via(proxy, container + "/health") == 200
    await _put(proxy, "/forward/cut", {"mode": "reset"})
    assert await _via(proxy, container + "/health") == "ServerDisconnectedError"
    await _put(proxy, "/forward/cut", {"mode": "drop"})
    assert await _via(proxy, container + "/health", timeout=0.5) in (
        "TimeoutError", "ServerTimeoutError", "SocketTimeoutError")
    async def dropped() -> int:
        async with proxy["http"].get(proxy["control"] + "/stats") as r:
            return (await r.json())["forward"]["dropped"]

    before = await dropped()
    held = asyncio.ensure_future(_via(proxy, container + "/health", timeout=10))
    # the proxy holds it (its own count), and the client still has no answer
    await async_wait_until(lambda: _more(dropped, before), 5, "the proxy to hold the request")
    assert not held.done()  # dropped: no answer at all
    await _delete(proxy, "/forward/cut")
    # it lived through the cut: reset at the heal (aiohttp retries a request once on a
    # pooled connection that was reset, so it may pass on the retry)
    assert await held in (200, "ServerDisconnectedError")
    assert await _via(proxy, container + "/health") == 200
    forward = proxy["forward"]
    assert forward.reset >= 1 and forward.dropped >= 2 and forward.passed >= 2


async def test_forward_websocket_goes_silent_under_a_drop_and_is_reset_at_the_heal(
        proxy, container: str) -> None:
    async with proxy["http"].ws_connect(container.replace("http", "ws") + "/ws/hmr",
                                        proxy=proxy["forward_url"]) as ws:
        await ws.send_str("a")
        assert (await ws.receive(timeout=3)).data == "echo:a"
        await _put(proxy, "/forward/cut", {"mode": "drop"})
        await ws.send_str("b")
        with pytest.raises(TimeoutError):
            await ws.receive(timeout=0.5)
        await _delete(proxy, "/forward/cut")
        msg = await ws.receive(timeout=3)
        assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_forward_refuses_targets_off_loopback(proxy) -> None:
    assert await _via(proxy, "http://192.0.2.1/health") == 403
    assert proxy["forward"].refused == 1


# ------------------------------------------------------------------ the fault kinds
def _manager(tmp_path, http: aiohttp.ClientSession, aws: AwsTarget | None) -> FaultManager:
    return FaultManager(FaultContext(Inventory(name="unit", aws=aws), http), EventBus(),
                        ledger=FaultLedger(tmp_path / "faults.jsonl"))


async def test_aws_throttle_is_injected_and_healed_through_the_ledger(proxy, tmp_path) -> None:
    aws = AwsTarget(region="us-east-1", endpoint_url=proxy["aws_url"],
                    fault_proxy_url=proxy["control"])
    faults = _manager(tmp_path, proxy["http"], aws)
    assert throttle_available(faults.ctx.inventory) is None
    rec = await faults.inject("aws.throttle", "aws", {"service": "cloudwatch",
                                                      "fraction": 1.0, "window_s": 30})
    assert rec.heal == {"proxy_url": proxy["control"], "service": "monitoring"}
    assert proxy["aws"].rules["monitoring"].fraction == 1.0
    assert await faults.heal(rec)
    assert proxy["aws"].rules == {} and faults.ledger.open_records() == []


async def test_aws_throttle_refuses_bad_parameters_before_anything_is_recorded(
        proxy, tmp_path) -> None:
    aws = AwsTarget(region="us-east-1", endpoint_url=proxy["aws_url"],
                    fault_proxy_url=proxy["control"])
    faults = _manager(tmp_path, proxy["http"], aws)
    with pytest.raises(UserError, match="fraction"):
        await faults.inject("aws.throttle", "aws", {"fraction": 1.5})
    with pytest.raises(UserError, match="service"):
        await faults.inject("aws.throttle", "aws", {"service": "Dynamo DB"})
    assert faults.ledger.records() == {} and proxy["aws"].rules == {}


@pytest.mark.parametrize("aws", [None, AwsTarget(region="us-east-1",
                                                 endpoint_url="http://127.0.0.1:1")],
                         ids=["no-aws", "no-proxy"])
async def test_aws_throttle_without_a_proxy_is_not_available_and_says_why(
        tmp_path, aws: AwsTarget | None) -> None:
    async with aiohttp.ClientSession() as http:
        faults = _manager(tmp_path, http, aws)
        reason = throttle_available(faults.ctx.inventory)
        assert reason and ("fault_proxy_url" in reason or "no [aws]" in reason)
        with pytest.raises(UserError, match="not available here") as caught:
            await faults.inject("aws.throttle", "aws", {})
        assert reason in str(caught.value) and caught.value.exit_code == 2
        assert faults.ledger.records() == {}


async def test_a_throttle_whose_proxy_is_gone_heals_as_nothing_to_heal(tmp_path) -> None:
    async with aiohttp.ClientSession() as http:
        faults = _manager(tmp_path, http, None)
        [port] = free_ports(1)
        rec = faults.ledger.open_fault("aws.throttle", "aws", {}, 60, heal={
            "proxy_url": f"http://127.0.0.1:{port}", "service": "dynamodb"})
        assert await faults.heal(rec)
        assert "nothing to heal" in faults.ledger.records()[rec.id].note


async def test_router_cut_needs_the_lab_and_says_so(tmp_path) -> None:
    async with aiohttp.ClientSession() as http:
        faults = _manager(tmp_path, http, None)
        with pytest.raises(UserError, match="only available on the embedded lab"):
            await faults.inject("previews.router-cut", "sessions", {})
        assert faults.ledger.records() == {}
    assert "embedded lab" in (router_cut_available(object()) or "")


async def test_a_crashed_runs_throttle_is_healed_at_the_next_start(proxy, tmp_path) -> None:
    aws = AwsTarget(region="us-east-1", endpoint_url=proxy["aws_url"],
                    fault_proxy_url=proxy["control"])
    faults = _manager(tmp_path, proxy["http"], aws)
    rec = await faults.inject("aws.throttle", "aws", {"fraction": 1.0})
    faults.ledger.mark(rec.id, "active")
    # the owner "crashed": its record now names a process that is gone
    lines = faults.ledger.path.read_text().replace(f'"owner_pid": {rec.owner_pid}',
                                                   '"owner_pid": 999999999')
    faults.ledger.path.write_text(lines)
    assert proxy["aws"].rules["dynamodb"].fraction == 1.0
    healed = await _manager(tmp_path, proxy["http"], aws).recover()
    assert [r.id for r in healed] == [rec.id] and proxy["aws"].rules == {}
