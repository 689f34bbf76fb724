"""Real faults on the lab's HTTP fault proxy: ``aws.throttle`` seen in botocore's retry
counters of a client made as the packs make theirs, the reference worker finishing a
session under it, and ``previews.router-cut`` with the recovery measured after the heal."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from opsconsole.config import Inventory, LabSpec
from opsconsole.faults.ledger import FaultLedger
from opsconsole.lab import Lab
from opsconsole.netproxy.throttle_stats import throttle_available, throttle_counts
from opsconsole.session import ConsoleSession
from opsconsole.systems.previews.router_cut import (
    route_status,
    router_cut_available,
    wait_route_recovered,
)
from opsconsole.targets.aws import aws_session
from opsconsole_lab.sessions.client import SessionsClient


class _Run:
    """What the helpers read of a scenario's run: the session's inventory and HTTP."""

    def __init__(self, session: ConsoleSession) -> None:
        self.session = session
        self.inventory = session.resolved_inventory
        self.http = session.http


@pytest.fixture
async def session(lab: Lab, tmp_path):
    s = ConsoleSession(Inventory(name="lab", lab=LabSpec()), lab_state_dir=str(lab.dir.root),
                       start_lab=False, probes=False, ledger=FaultLedger(tmp_path / "l.jsonl"))
    await s.start()
    yield s
    await s.faults.heal_all()
    assert s.faults.ledger.open_records() == []
    await s.stop()


def _dynamodb(session: ConsoleSession, config: Config | None = None) -> Any:
    """A DynamoDB client as the packs make theirs: targets.aws, the inventory's endpoint."""
    aws = session.resolved_inventory.aws
    return aws_session(aws, session.aws_credentials).client(
        "dynamodb", endpoint_url=aws.endpoint_url, config=config)


async def _calls(ddb: Any, n: int) -> tuple[int, int]:
    """(sum of ResponseMetadata.RetryAttempts, needs-retry events that retried) of n calls."""
    retried = 0

    def count(response: Any = None, **_: Any) -> None:
        nonlocal retried
        if response is not None and response[1].get("Error", {}).get("Code"):
            retried += 1

    ddb.meta.events.register("needs-retry.dynamodb", count)
    attempts = 0
    for _ in range(n):
        attempts += (await ddb.list_tables())["ResponseMetadata"]["RetryAttempts"]
    ddb.meta.events.unregister("needs-retry.dynamodb", count)
    return attempts, retried


async def test_aws_throttle_is_seen_in_botocore_retry_counters(lab: Lab,
                                                               session: ConsoleSession) -> None:
    run = _Run(session)
    assert throttle_available(run) is None
    async with _dynamodb(session) as ddb:
        assert await _calls(ddb, 5) == (0, 0)  # the control: no fault, no retry
        before = await throttle_counts(run)
        rec = await session.faults.inject("aws.throttle", "aws",
                                          {"service": "dynamodb", "fraction": 0.5})
        attempts, retried = await _calls(ddb, 12)
        after = await throttle_counts(run)
        assert attempts > 0 and retried >= attempts  # real retries on real errors
        assert after["throttled"] - before["throttled"] >= attempts
        assert after["throttled_by_operation"]["ListTables"] >= attempts
        await session.faults.heal(rec)
        assert await _calls(ddb, 5) == (0, 0)  # healed: no retry again


async def test_aws_throttle_at_one_exhausts_the_retries(session: ConsoleSession) -> None:
    await session.faults.inject("aws.throttle", "aws", {"fraction": 1.0, "window_s": 60})
    async with _dynamodb(session, Config(retries={"max_attempts": 2})) as ddb:
        with pytest.raises(ClientError) as caught:
            await ddb.list_tables()
    err = caught.value.response
    assert err["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert err["ResponseMetadata"]["RetryAttempts"] == 2
    await session.faults.heal_all()
    async with _dynamodb(session) as ddb:
        assert (await ddb.list_tables())["ResponseMetadata"]["RetryAttempts"] == 0


async def test_the_worker_completes_a_session_under_the_throttle_then_the_router_cut(
        lab: Lab, session: ConsoleSession) -> None:
    run = _Run(session)
    base = lab.topology().sessions_url
    before = await throttle_counts(run)
    rec = await session.faults.inject("aws.throttle", "aws", {"fraction": 0.5})
    async with SessionsClient(base) as sc:
        sent = await sc.send_email("u1", "create page about Throttling")
        done = await sc.wait_message(sent["message_id"], timeout=90)
    after = await throttle_counts(run)
    assert done["state"] == "applied"  # its backoff rode out the throttling
    assert after["throttled"] > before["throttled"]
    await session.faults.heal(rec)
    sid = done["session_id"]

    # the router ↔ containers link through the proxy: cut it, see it fail, heal, recover
    assert router_cut_available(run) is None
    http = session.http
    assert await route_status(http, base, sid) == 200  # the control
    cut = await session.faults.inject("previews.router-cut", "sessions", {"mode": "reset"})
    assert await route_status(http, base, sid) == 502
    await session.faults.heal(cut)
    recovered = await wait_route_recovered(http, base, sid, timeout=15)
    assert recovered is not None and recovered < 5, recovered

    cut = await session.faults.inject("previews.router-cut", "sessions", {"mode": "drop"})
    started = time.monotonic()
    assert await route_status(http, base, sid, timeout=3) == 0  # packets vanish: no answer
    assert time.monotonic() - started >= 2.9
    await session.faults.heal(cut)
    recovered = await wait_route_recovered(http, base, sid, timeout=15)
    assert recovered is not None and recovered < 5, recovered
    async with aiohttp.ClientSession() as fresh, fresh.get(
            f"{lab.topology().http_proxy_url}/stats") as r:
        forward = (await r.json())["forward"]
    assert forward["cut"] is None and forward["reset"] >= 1 and forward["dropped"] >= 1
