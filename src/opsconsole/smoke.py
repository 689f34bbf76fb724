"""`opsconsole smoke`: the `smoke` pack plus a signed boot transcript.

The phases are scenarios (``smoke.*``, :mod:`opsconsole.systems.smoke.packs.smoke`), so the
run leaves the usual journal, transcript, JUnit and Markdown; this module adds
``boot_transcript_<YYYYMMDD-HHMMSS>.json``: the summary an operator files as proof
that a deployment was ready, signed with the same Ed25519 key (``opsconsole verify``).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .config import Inventory
from .report.signing import load_or_create_key
from .report.transcript import sha256_file, sign_transcript, system_info, write_json
from .runner import RunOutcome, run_headless
from .scenarios import resolve

PHASES = {"smoke.config": "1 configuration", "smoke.boot": "2 boot",
          "smoke.health": "3 service health", "smoke.auth": "4 authentication",
          "smoke.control": "5 control path", "smoke.provisioning": "6 provisioning",
          "smoke.workflow": "7 end-to-end workflow", "smoke.resources": "8 resources",
          "smoke.security": "9 security"}


@dataclass
class SmokeOutcome:
    run: RunOutcome
    transcript: Path
    summary: dict[str, int]
    failures: list[str]  # every phase that failed or broke, with its reason, and failed checks
    unknowns: list[str]  # every phase no check could decide, and unknown checks


def tool_digest() -> str:
    """SHA-256 over the package's own source files (name and content, sorted)."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".tcss"):
            h.update(str(path.relative_to(root)).encode() + b"\0")
            h.update(path.read_bytes())
    return h.hexdigest()


async def run_smoke(inventory: Inventory, *, report_dir: Path | None, mode: str = "safe",
                    memory_budget_mib: float | None = None, lab_state_dir: str | None = None,
                    boot_timeout: float = 60.0, strict: bool = False) -> SmokeOutcome:
    options: dict[str, Any] = {"mode": mode}
    if memory_budget_mib is not None:
        options["memory_budget_mib"] = memory_budget_mib
    scenarios = resolve("smoke", options)
    started = time.time()
    outcome = await run_headless(inventory, "smoke", report_dir=report_dir,
                                 lab_state_dir=lab_state_dir, scenarios=scenarios,
                                 lab_timeout=boot_timeout, run_despite_lab_error=True,
                                 strict=strict)
    return _boot_transcript(inventory, outcome, mode, started, strict)


def _boot_transcript(inventory: Inventory, outcome: RunOutcome, mode: str,
                     started: float, strict: bool = False) -> SmokeOutcome:
    """The boot transcript: per phase its verdict (the engine's, the same as in JUnit and
    the exit code), every check, and one line per phase or check that did not pass."""
    finished = time.time()
    phases = []
    counts = {"total": 0, "passed": 0, "failed": 0, "warned": 0, "unknown": 0, "error": 0}
    failures: list[str] = []
    unknowns: list[str] = []
    by_id = {sc.id: sc for sc in outcome.scenarios}
    for sid, label in PHASES.items():
        sc = by_id.get(sid)
        if sc is None:
            continue
        if sc.status == "unknown":
            unknowns.append(f"{label}: UNKNOWN: {sc.reason}")
        elif sc.status != "pass":
            failures.append(f"{label}: {sc.status.upper()}: {sc.reason}")
        checks = [c for c in sc.checks if c.phase == "method"]
        for c in checks:
            counts["total"] += 1
            key = {"pass": "passed", "fail": "failed", "warn": "warned",
                   "unknown": "unknown"}.get(c.status, "error")
            counts[key] += 1
            line = f"{label}: {c.name} {c.status.upper()}"
            if c.status == "unknown":
                unknowns.append(line + f" ({_why(c.evidence)})")
            elif c.status not in ("pass", "warn"):
                failures.append(line)
        phases.append({"phase": label, "id": sid, "status": str(sc.status),
                       "duration_s": round(sc.duration_s, 3), "reason": sc.reason,
                       "checks": [{k: c.as_json()[k] for k in ("name", "status", "duration_s",
                                                               "evidence")} for c in checks],
                       "metrics": sc.metrics})

    def section(sid: str) -> dict[str, Any]:
        sc = by_id.get(sid)
        return {c.name: {"status": str(c.status), "evidence": c.evidence}
                for c in (sc.checks if sc else []) if c.phase == "method"}

    def metrics(sid: str) -> dict[str, float]:
        sc = by_id.get(sid)
        return sc.metrics if sc else {}

    source = inventory.source if inventory.source and inventory.source.exists() else None
    body = {
        "kind": "opsconsole.boot_transcript", "session_id": outcome.run_id,
        "version": __version__, "mode": mode, "target": inventory.name,
        "started_at": started, "finished_at": finished,
        "started_at_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "duration_s": round(finished - started, 3),
        "status": outcome.status, "strict": strict,
        "system": system_info(), "summary": counts, "failures": failures,
        "unknowns": unknowns, "phases": phases,
        "service_health": section("smoke.health"),
        "performance": {**metrics("smoke.boot"), **metrics("smoke.resources"),
                        **metrics("smoke.control"), **metrics("smoke.provisioning")},
        "security": section("smoke.security"),
        "digests": {"tool_sha256": tool_digest(),
                    "config_file": str(source) if source else None,
                    "config_sha256": sha256_file(source) if source else None},
        "run_transcript": "transcript.json",
    }
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime(started))
    path = outcome.report_dir / f"boot_transcript_{stamp}.json"
    write_json(path, sign_transcript(body, load_or_create_key()))
    return SmokeOutcome(outcome, path, counts, failures, unknowns)


def _why(evidence: dict[str, Any]) -> str:
    return str(evidence.get("reason") or evidence.get("error") or evidence.get("note")
               or "no observation")
