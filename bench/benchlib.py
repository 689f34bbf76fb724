"""Shared pieces of the benchmarks: the bench lab, medians with spread, result files.

Every benchmark script writes one JSON document (``--out``) of the same shape::

    {"benchmark", "date", "machine", "command", "params", "figures": [...], "raw": ...}

where each figure is a :class:`Figure` (both sides, medians over runs, every run's value,
the goal and whether it is met). ``run_all.py`` only renders figures; the knowledge of
what a figure means stays in the script that measured it.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import platform
import shlex
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import psutil

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
# The benchmarks' own lab: never the shared one at .opsconsole/lab that tests use.
BENCH_LAB = REPO / ".opsconsole" / "bench-lab"


def machine() -> dict[str, Any]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"arch": platform.machine(), "cores": psutil.cpu_count(), "cpu": model,
            "memory_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "loadavg_1m": round(os.getloadavg()[0], 2)}


def now_utc() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


def command_line() -> str:
    return shlex.join([".venv/bin/python", os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])


def median(values: list[float]) -> float | None:
    vals = [v for v in values if v is not None and not math.isnan(v)]
    return statistics.median(vals) if vals else None


def knee(rows: list[dict[str, Any]], x: str, y: str | None = None) -> float:
    """Going up in ``x``: the ``y`` (default ``x``) of the highest row met before the first
    miss. A rate met only above a miss is noise, not a sustained capacity."""
    best = 0.0
    for r in sorted(rows, key=lambda r: r[x]):
        if not r["meets"]:
            break
        best = r[y or x]
    return best


@dataclass
class Figure:
    """One row of the table: opsconsole and its reference, both measured in this session."""

    figure: str
    unit: str
    opsconsole_runs: list[float]
    reference_runs: list[float] = field(default_factory=list)
    reference_label: str = ""  # what the reference is: a tool, ground truth, or "goal"
    goal: str = ""
    # how "met" is decided: from the ratio opsconsole/reference ("ratio>=", 0.95), from
    # opsconsole alone when the reference is the goal itself ("value<=", 25), or from the
    # difference opsconsole - reference ("lag<=", 1.0)
    rule: tuple[str, float] | None = None
    note: str = ""
    opsconsole: float | None = None
    reference: float | None = None
    ratio: float | None = None
    met: bool | None = None

    def __post_init__(self) -> None:
        self.opsconsole = median(self.opsconsole_runs)
        self.reference = median(self.reference_runs)
        if self.opsconsole is not None and self.reference:
            self.ratio = self.opsconsole / self.reference
        if self.rule is not None:
            kind, limit = self.rule
            value = {"ratio": self.ratio, "value": self.opsconsole,
                     "lag": None if self.opsconsole is None or self.reference is None
                     else self.opsconsole - self.reference}[kind[:-2]]
            if value is not None:
                self.met = value >= limit if kind.endswith(">=") else value <= limit

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def write_result(out: Path | None, benchmark: str, params: dict[str, Any],
                 figures: list[Figure], raw: Any) -> dict[str, Any]:
    """Print the result as JSON and write it to ``out`` (when given)."""
    doc = {"benchmark": benchmark, "date": now_utc(), "machine": machine(),
           "command": command_line(), "params": params,
           "figures": [f.to_dict() for f in figures], "raw": raw}
    text = json.dumps(doc, indent=1, default=float)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n")
    print(json.dumps({"benchmark": benchmark, "figures": [
        {k: f.to_dict()[k] for k in ("figure", "opsconsole", "reference", "ratio", "met")}
        for f in figures]}, indent=1, default=float))
    return doc


async def bench_lab(state_dir: str | os.PathLike[str] | None = None) -> Any:
    """The benchmarks' lab, up (idempotent: a running one is reused)."""
    from opsconsole.config import DEFAULT_CONFIG, load_config
    from opsconsole.lab import Lab

    lab = Lab(load_config(DEFAULT_CONFIG).lab, state_dir=state_dir or BENCH_LAB)
    await lab.up()
    return lab


async def vault_leader(lab: Any, timeout: float = 30.0) -> tuple[str, str]:
    """(node name, API address) of the lab's active Vault node."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as http:
        while time.monotonic() < deadline:
            for node in lab.topology().vault:
                try:
                    async with http.get(f"{node.api_addr}/v1/sys/health") as r:
                        body = await r.json(content_type=None)
                except (aiohttp.ClientError, TimeoutError, ValueError):
                    continue
                if body.get("standby") is False and not body.get("sealed"):
                    return node.name, node.api_addr
            await asyncio.sleep(0.1)
    raise RuntimeError("no active Vault node")


def rotate(items: list[str], k: int) -> list[str]:
    """``items`` starting at index ``k``: who goes first alternates run by run."""
    k %= len(items)
    return items[k:] + items[:k]
