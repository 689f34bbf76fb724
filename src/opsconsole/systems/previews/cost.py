"""The `sessions` pack's cost expectation: usage counters at the dated list prices.

The formulas are docs/contracts/sessions.md ("Usage counters and cost"), applied to the
price table ``config/pricing.toml``; this is the console's own arithmetic, not the
reference stack's (which computes its ``/api/cost`` separately), so the two can be held
against each other.
"""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: src/opsconsole/systems/previews/cost.py -> repository root / config / pricing.toml
DEFAULT_PRICING = Path(__file__).resolve().parents[4] / "config" / "pricing.toml"
DEFAULT_VCPU = 0.25  # a task's size when the stack does not report it
DEFAULT_MEMORY_GB = 0.5


@dataclass(frozen=True)
class Prices:
    """One dated price table (USD, on demand)."""

    as_of: str
    region: str
    vcpu_hour: float
    gb_hour: float
    ddb_read_per_million: float
    ddb_write_per_million: float
    sqs_per_million: float
    ses_per_thousand: float
    cloudwatch_per_thousand: float


def load_prices(path: Path | str | None = None) -> Prices:
    """Read the price table; a missing key is a one-line ``ValueError`` naming it."""
    source = Path(path) if path else DEFAULT_PRICING
    with open(source, "rb") as fh:
        table = tomllib.load(fh)

    def price(section: str, key: str) -> float:
        try:
            return float(table[section][key])
        except KeyError:
            raise ValueError(f"{source}: missing key [{section}] {key}") from None

    try:
        meta = table["meta"]
        as_of, region = meta["as_of"], meta["region"]
    except KeyError as exc:
        raise ValueError(f"{source}: missing key [meta] {exc.args[0]}") from None
    return Prices(
        as_of=as_of.isoformat() if isinstance(as_of, dt.date) else str(as_of),
        region=str(region),
        vcpu_hour=price("fargate", "vcpu_hour"), gb_hour=price("fargate", "gb_hour"),
        ddb_read_per_million=price("dynamodb", "read_request_units_per_million"),
        ddb_write_per_million=price("dynamodb", "write_request_units_per_million"),
        sqs_per_million=price("sqs", "requests_per_million"),
        ses_per_thousand=price("ses", "emails_per_thousand"),
        cloudwatch_per_thousand=price("cloudwatch", "put_metric_data_requests_per_thousand"))


def estimate_cost(usage: Mapping[str, Any], prices: Prices | None = None) -> dict[str, Any]:
    """Line items and total in USD for ``usage`` (counter deltas; a missing one counts 0)."""
    p = prices or load_prices()

    def used(key: str, default: float = 0.0) -> float:
        value = usage.get(key, default)
        return float(value) if isinstance(value, int | float) else default

    billed = used("fargate_billed_seconds", used("fargate_task_seconds"))
    vcpu_hours = billed / 3600 * used("task_vcpu", DEFAULT_VCPU)
    gb_hours = billed / 3600 * used("task_memory_gb", DEFAULT_MEMORY_GB)
    lines = {
        "fargate_vcpu": vcpu_hours * p.vcpu_hour,
        "fargate_memory": gb_hours * p.gb_hour,
        "dynamodb_reads": used("dynamodb_read_units") / 1e6 * p.ddb_read_per_million,
        "dynamodb_writes": used("dynamodb_write_units") / 1e6 * p.ddb_write_per_million,
        "sqs": used("sqs_requests") / 1e6 * p.sqs_per_million,
        "ses": used("ses_emails") / 1e3 * p.ses_per_thousand,
        "cloudwatch": used("cloudwatch_requests") / 1e3 * p.cloudwatch_per_thousand,
    }
    return {"currency": "USD", "prices_as_of": p.as_of, "region": p.region,
            "vcpu_hours": round(vcpu_hours, 6), "gb_hours": round(gb_hours, 6),
            "lines": {k: round(v, 8) for k, v in lines.items()},
            "total_usd": round(sum(lines.values()), 8)}


#: the seed's "cost predictability": the stack's own estimate within ±10 % of the observed
COST_TOLERANCE = 0.10
#: lines the pack observes itself (ECS task lifetimes); the request-priced lines of the
#: stack are its own API calls, which no client outside the stack can see
COMPARED_LINES = ("fargate_vcpu", "fargate_memory")
STACK_COUNTERS = ("dynamodb_read_units", "dynamodb_write_units", "sqs_requests", "ses_emails",
                  "cloudwatch_requests", "fargate_task_seconds", "fargate_billed_seconds")


def observed_cost(fargate: Mapping[str, Any], own_calls: Mapping[str, Any],
                  prices: Prices | None = None) -> dict[str, Any]:
    """The run's cost as the pack saw it: ECS task lifetimes (``fargate``, from
    :func:`..usage.fargate_usage`) plus the pack's own AWS calls (``own_calls``)."""
    p = prices or load_prices()
    cost = estimate_cost({**own_calls, **fargate}, p)
    return {**cost, "tasks": fargate.get("tasks", 0),
            "task_times_from_ecs": fargate.get("times_from_ecs", 0),
            "tasks_started_before_run": fargate.get("started_before_run", 0),
            "tasks_between_samples": fargate.get("between_samples", 0),
            "fargate_billed_seconds": fargate.get("fargate_billed_seconds", 0.0),
            "own_calls": dict(own_calls)}


def cost_predictability(observed: Mapping[str, Any] | None, observed_reason: str,
                        stack_before: Mapping[str, Any] | None,
                        stack_after: Mapping[str, Any] | None,
                        tolerance: float = COST_TOLERANCE,
                        prices: Prices | None = None) -> tuple[str, dict[str, Any]]:
    """Is the stack's own estimate of the run within ``tolerance`` of what the pack saw?

    ``observed``: :func:`observed_cost` (None: the pack could not observe, ``observed_reason``
    says why → unknown). ``stack_before``/``after``: the stack's cumulative usage counters
    (an optional capability; None or a counter missing → unknown). The compared lines are
    :data:`COMPARED_LINES`; the stack's request-priced lines are shown, not compared.
    Fails when they differ by more than ``tolerance`` of the observed, or when one side
    bills tasks the other never saw.
    """
    if observed is None:
        return "unknown", {"reason": "the run's AWS usage could not be observed: "
                           + (observed_reason or "no observation")}
    seen = {"observed": dict(observed)}
    missing = sorted(k for k in STACK_COUNTERS
                     if k not in (stack_before or {}) or k not in (stack_after or {}))
    if stack_before is None or stack_after is None:
        return "unknown", {**seen, "reason": "the stack gives no usage of its own (optional "
                           "capability [previews] usage_url): no estimate to hold against "
                           "the observed one"}
    if missing:
        return "unknown", {**seen, "reason": "the stack's usage lacks "
                           + ", ".join(missing)}
    delta = {k: float(stack_after[k]) - float(stack_before[k]) for k in STACK_COUNTERS}
    backwards = sorted(k for k, v in delta.items() if v < 0)
    delta |= {k: stack_after[k] for k in ("task_vcpu", "task_memory_gb") if k in stack_after}
    stack = estimate_cost(delta, prices)
    mine = sum(observed["lines"][k] for k in COMPARED_LINES)
    theirs = sum(stack["lines"][k] for k in COMPARED_LINES)
    evidence = {**seen, "stack": {"usage": {k: round(v, 3) if isinstance(v, float) else v
                                            for k, v in delta.items()},
                                  "lines": stack["lines"], "total_usd": stack["total_usd"]},
                "compared": list(COMPARED_LINES), "observed_usd": round(mine, 8),
                "stack_usd": round(theirs, 8), "tolerance_pct": round(tolerance * 100, 3),
                "not_compared": {k: v for k, v in stack["lines"].items()
                                 if k not in COMPARED_LINES},
                "not_compared_why": "the stack's own API calls (DynamoDB, SQS, SES, "
                                    "CloudWatch) are invisible outside it"}
    if backwards:
        return "fail", {**evidence, "reason": "the stack's counters went backwards: "
                        + ", ".join(backwards)}
    if mine == 0 and theirs == 0:
        return "unknown", {**evidence, "reason": "no ECS task ran during the run: nothing "
                           "billable to compare"}
    if mine == 0:
        return "fail", {**evidence, "off_pct": None, "reason": "the stack bills Fargate "
                        f"(${theirs:.8f}) for tasks ECS never showed the pack"}
    off = (theirs - mine) / mine
    evidence["off_pct"] = round(off * 100, 2)
    return ("pass" if abs(off) <= tolerance else "fail"), evidence
