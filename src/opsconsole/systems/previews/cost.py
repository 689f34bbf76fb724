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
