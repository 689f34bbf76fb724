"""Estimated AWS cost of a sessions run, from usage counters and ``config/pricing.toml``."""

from __future__ import annotations

import datetime as dt
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: src/opsconsole_lab/sessions/pricing.py -> repository root / config / pricing.toml
DEFAULT_PRICING = Path(__file__).resolve().parents[3] / "config" / "pricing.toml"


@dataclass(frozen=True)
class Prices:
    as_of: str
    region: str
    source: str
    fargate_vcpu_hour: float
    fargate_gb_hour: float
    fargate_minimum_seconds: float
    dynamodb_write_per_million: float
    dynamodb_read_per_million: float
    sqs_per_million: float
    ses_per_thousand: float
    cloudwatch_put_per_thousand: float


def load_prices(path: Path | str | None = None) -> Prices:
    """Read the dated price table; errors name the file and the missing key."""
    p = Path(path) if path else DEFAULT_PRICING
    with open(p, "rb") as f:
        doc = tomllib.load(f)
    try:
        as_of = doc["meta"]["as_of"]
        return Prices(
            as_of=as_of.isoformat() if isinstance(as_of, dt.date) else str(as_of),
            region=doc["meta"]["region"], source=doc["meta"]["source"],
            fargate_vcpu_hour=float(doc["fargate"]["vcpu_hour"]),
            fargate_gb_hour=float(doc["fargate"]["gb_hour"]),
            fargate_minimum_seconds=float(doc["fargate"].get("minimum_seconds", 60)),
            dynamodb_write_per_million=float(doc["dynamodb"]["write_request_units_per_million"]),
            dynamodb_read_per_million=float(doc["dynamodb"]["read_request_units_per_million"]),
            sqs_per_million=float(doc["sqs"]["requests_per_million"]),
            ses_per_thousand=float(doc["ses"]["emails_per_thousand"]),
            cloudwatch_put_per_thousand=float(
                doc["cloudwatch"]["put_metric_data_requests_per_thousand"]))
    except KeyError as exc:
        raise ValueError(f"{p}: missing key {exc}") from exc


def estimate_cost(usage: Mapping[str, float], prices: Prices | None = None) -> dict[str, Any]:
    """Line items and total in USD.

    ``usage`` keys (missing ones count as 0): fargate_billed_seconds (task-seconds after
    the per-task minimum; falls back to fargate_task_seconds), task_vcpu, task_memory_gb,
    dynamodb_read_units, dynamodb_write_units, sqs_requests, ses_emails,
    cloudwatch_requests.
    """
    pr = prices or load_prices()
    u = {k: float(v) for k, v in usage.items() if isinstance(v, int | float)}
    task_hours = u.get("fargate_billed_seconds", u.get("fargate_task_seconds", 0.0)) / 3600
    vcpu_hours = task_hours * u.get("task_vcpu", 0.25)
    gb_hours = task_hours * u.get("task_memory_gb", 0.5)
    lines = {
        "fargate_vcpu": vcpu_hours * pr.fargate_vcpu_hour,
        "fargate_memory": gb_hours * pr.fargate_gb_hour,
        "dynamodb_reads": u.get("dynamodb_read_units", 0.0) / 1e6 * pr.dynamodb_read_per_million,
        "dynamodb_writes": u.get("dynamodb_write_units", 0.0) / 1e6
        * pr.dynamodb_write_per_million,
        "sqs": u.get("sqs_requests", 0.0) / 1e6 * pr.sqs_per_million,
        "ses": u.get("ses_emails", 0.0) / 1e3 * pr.ses_per_thousand,
        "cloudwatch": u.get("cloudwatch_requests", 0.0) / 1e3 * pr.cloudwatch_put_per_thousand,
    }
    return {"currency": "USD", "prices_as_of": pr.as_of, "region": pr.region,
            "vcpu_hours": round(vcpu_hours, 6), "gb_hours": round(gb_hours, 6),
            "lines": {k: round(v, 8) for k, v in lines.items()},
            "total_usd": round(sum(lines.values()), 8)}
