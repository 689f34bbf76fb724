"""Sessions stack pieces that need no AWS: instructions, site, backoff, pricing."""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import pytest
from botocore.exceptions import ClientError

from opsconsole_lab.sessions import website as site
from opsconsole_lab.sessions.backoff import Backoff, RetriesExhausted, is_throttle, retry
from opsconsole_lab.sessions.instructions import (
    InstructionError,
    format_email_body,
    parse_email_body,
    parse_instruction,
)
from opsconsole_lab.sessions.pricing import estimate_cost, load_prices
from opsconsole_lab.sessions.store import session_id_for


def test_instruction_grammar() -> None:
    ins = parse_instruction("Create page about Solar Panels")
    assert (ins.action, ins.slug, ins.title) == ("create", "solar-panels", "Solar Panels")
    ins = parse_instruction("update page Solar Panels: now with batteries")
    assert (ins.action, ins.slug, ins.text) == ("update", "solar-panels", "now with batteries")
    assert parse_instruction("delete page solar panels").action == "delete"
    for bad in ("paint the fence", "create page about !!!", ""):
        with pytest.raises(InstructionError):
            parse_instruction(bad)


def test_email_body_round_trip_and_validation() -> None:
    req = parse_email_body(format_email_body("alice", "acme", "create page about x"))
    assert (req.user, req.client, req.instruction) == ("alice", "acme", "create page about x")
    with pytest.raises(InstructionError, match="user"):
        parse_email_body("client: acme\ninstruction: create page about x")
    with pytest.raises(InstructionError, match="unknown instruction"):
        parse_email_body("user: alice\ninstruction: paint the fence")


def test_session_ids_are_named_by_the_opening_email() -> None:
    assert session_id_for("m-1") == session_id_for("m-1") != session_id_for("m-2")
    assert session_id_for("m-1").startswith("s-")


def test_site_pages_and_index(tmp_path: Path) -> None:
    site.init_site(tmp_path)
    site.apply(tmp_path, parse_instruction("create page about Owls"))
    site.apply(tmp_path, parse_instruction("update page owls: they hoot"))
    page = (tmp_path / "site/pages/owls.html").read_text()
    assert "<title>Owls</title>" in page and "they hoot" in page
    assert 'href="pages/owls.html"' in (tmp_path / "site/index.html").read_text()
    with pytest.raises(InstructionError, match="no page"):
        site.apply(tmp_path, parse_instruction("update page bats: no"))
    site.apply(tmp_path, parse_instruction("delete page owls"))
    assert site.pages(tmp_path) == []


def test_backoff_is_exponential_capped_and_jittered() -> None:
    b = Backoff(attempts=8, base=0.1, cap=1.0)
    assert [b.ceiling(i) for i in range(5)] == [0.1, 0.2, 0.4, 0.8, 1.0]
    rng = random.Random(7)
    delays = [b.delay(4, rng) for _ in range(200)]
    assert all(0 <= d <= 1.0 for d in delays) and len(set(delays)) > 150


async def test_retry_bounds_and_classifies() -> None:
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}},
                            "PutItem")
    assert is_throttle(throttled)
    assert not is_throttle(ClientError({"Error": {"Code": "ValidationException"}}, "PutItem"))
    calls, waits = [], []

    async def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise throttled
        return "ok"

    async def no_sleep(s: float) -> None:
        waits.append(s)

    assert await retry(flaky, Backoff(5, 0.1, 1), is_throttle, sleep=no_sleep) == "ok"
    assert len(calls) == 3 and len(waits) == 2

    async def always() -> None:
        raise throttled

    with pytest.raises(RetriesExhausted) as info:
        await retry(always, Backoff(4, 0.1, 1), is_throttle, sleep=no_sleep)
    assert info.value.attempts == 4 and info.value.last is throttled

    async def broken() -> None:
        raise ValueError("not retryable")

    with pytest.raises(ValueError):
        await retry(broken, Backoff(4, 0.1, 1), is_throttle, sleep=asyncio.sleep)


def test_pricing_table_and_estimate() -> None:
    prices = load_prices()
    assert prices.region == "us-east-1" and prices.as_of[:4].isdigit()
    assert 0 < prices.fargate_gb_hour < prices.fargate_vcpu_hour
    est = estimate_cost({"fargate_billed_seconds": 3600, "task_vcpu": 1, "task_memory_gb": 2,
                         "dynamodb_read_units": 1e6, "dynamodb_write_units": 1e6,
                         "sqs_requests": 1e6, "ses_emails": 1000, "cloudwatch_requests": 1000},
                        prices)
    lines = est["lines"]
    assert lines["fargate_vcpu"] == pytest.approx(prices.fargate_vcpu_hour)
    assert lines["fargate_memory"] == pytest.approx(2 * prices.fargate_gb_hour)
    assert lines["dynamodb_writes"] == pytest.approx(prices.dynamodb_write_per_million)
    assert lines["sqs"] == pytest.approx(prices.sqs_per_million)
    assert lines["ses"] == pytest.approx(prices.ses_per_thousand)
    assert est["total_usd"] == pytest.approx(sum(lines.values()))
    assert estimate_cost({}, prices)["total_usd"] == 0


def test_pricing_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[meta]\nas_of = 2026-01-01\nregion = "us-east-1"\nsource = "x"\n')
    with pytest.raises(ValueError, match=r"p\.toml: missing key 'fargate'"):
        load_prices(bad)
