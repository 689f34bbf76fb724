"""Headless runs (`opsconsole run`): the same engine and verdict as the TUI, plus a
journal, a signed transcript, JUnit and Markdown in the report dir."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Inventory
from .core.events import Event, Note
from .core.results import ScenarioResult
from .core.verdict import EXIT_COULD_NOT_RUN, EXIT_FAIL, EXIT_PASS, counts, run_verdict
from .report.journal import Journal
from .report.redact import Redactor
from .report.signing import load_or_create_key
from .report.transcript import journal_section, sign_transcript, system_info, write_json
from .report.writers import write_junit, write_markdown
from .scenarios import Scenario, resolve, run_scenario
from .session import ConsoleSession
from .systems.nats.events import CanaryReport

__all__ = ["EXIT_COULD_NOT_RUN", "EXIT_FAIL", "EXIT_PASS", "RunOutcome", "RunRecorder",
           "overall", "run_headless", "run_scenarios"]


@dataclass
class RunOutcome:
    run_id: str
    exit_code: int
    status: str
    report_dir: Path
    scenarios: list[ScenarioResult] = field(default_factory=list)
    error: str | None = None  # why the run could not start (the lab did not come up)


def default_report_dir(run_id: str) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    return Path(".opsconsole") / "reports" / f"{stamp}-{run_id}"


def dry_run_plan(scenarios: list[Scenario]) -> list[dict[str, Any]]:
    return [{"id": s.id, "title": s.title,
             "steady_state": [c.name for c in s.steady_state()],
             "safeguards": [c.name for c in s.safeguards()], "method": s.plan(),
             "mutates": list(s.mutates) if s.mutates is not None else ["undeclared"]}
            for s in scenarios]


def overall(results: list[ScenarioResult], lab_error: str | None,
            strict: bool = False) -> tuple[str, int]:
    """The run's (status, exit code): :func:`opsconsole.core.verdict.run_verdict`."""
    return run_verdict(results, strict=strict, could_not_run=lab_error)


class RunRecorder:
    """Journal a run from the session's bus; on finish, write the signed reports.

    Headless runs and runs launched from the console use the same recorder, so a
    scenario leaves the same evidence wherever it was started.
    """

    def __init__(self, session: ConsoleSession, run_id: str, report_dir: Path,
                 strict: bool = False) -> None:
        self.session = session
        self.run_id = run_id
        self.report_dir = report_dir
        self.strict = strict
        report_dir.mkdir(parents=True, exist_ok=True)
        session.report_dir = report_dir
        self.journal = Journal(report_dir / "journal.jsonl", Redactor.for_session(session))
        self._unsubscribe = session.bus.subscribe(self.journal.append)
        self._unsubscribe_canary = session.bus.subscribe(self._on_event)
        self.canary_first: dict[tuple[str, str], CanaryReport] = {}
        self.canary_last: dict[tuple[str, str], CanaryReport] = {}
        self.started_wall, self.started = time.time(), time.monotonic()
        self.finished = False

    def _on_event(self, event: Event) -> None:
        if isinstance(event, CanaryReport):
            key = (event.leaf, event.path)
            self.canary_first.setdefault(key, event)
            self.canary_last[key] = event

    def canary_summary(self) -> dict[str, dict[str, Any]]:
        """Relay canary counters over this run's window, per leaf and direction.

        Counted on settled messages only (their fate is known), so within the
        window ``messages == delivered + lost`` holds exactly.
        """
        out: dict[str, dict[str, Any]] = {}
        for key, last in sorted(self.canary_last.items()):
            first = self.canary_first[key]
            settled, lost = last.settled - first.settled, last.lost - first.lost
            out.setdefault(key[0], {})[key[1]] = {
                "messages": settled, "delivered": settled - lost, "lost": lost,
                "duplicated": last.duplicated - first.duplicated,
                "reordered": last.reordered - first.reordered,
                "p50_ms": last.p50_ms, "p99_ms": last.p99_ms}
        return out

    def refresh_redactor(self) -> None:
        """Pick up secrets created after the recorder started (a lab just built)."""
        self.journal.redactor = Redactor.for_session(self.session)

    def finish(self, results: list[ScenarioResult], status: str,
               error: str | None = None) -> Path:
        self.finished = True
        self._unsubscribe()
        self._unsubscribe_canary()
        self.journal.close()
        _write_reports(self.report_dir, self.run_id, self.session.inventory,
                       self.journal.redactor, results, status, self.started_wall,
                       time.monotonic() - self.started, error, self.canary_summary(),
                       strict=self.strict)
        return self.report_dir


async def run_scenarios(session: ConsoleSession, scenarios: list[Scenario],
                        run_id: str) -> list[ScenarioResult]:
    """Run scenarios one after another on a started session."""
    assert session.faults is not None
    results: list[ScenarioResult] = []
    for scenario in scenarios:
        if scenario.needs_lab and session.lab is None:
            results.append(ScenarioResult.lacks(scenario.id, scenario.title,
                                                scenario.needs_lab_reason))
            continue
        results.append(await run_scenario(scenario, session, session.faults, run_id))
    return results


async def run_headless(inventory: Inventory, selector: str, *, report_dir: Path | None = None,
                       lab_state_dir: str | None = None,
                       scenarios: list[Scenario] | None = None, lab_timeout: float = 60.0,
                       run_despite_lab_error: bool = False, strict: bool = False) -> RunOutcome:
    """Run ``selector`` (or the already configured ``scenarios``) on a fresh session.

    A lab that does not come up stops the run (exit 2) unless ``run_despite_lab_error``:
    smoke runs its phases anyway, so the failure is reported by phase and check.
    ``strict``: any unknown (scenario or check) fails the run.
    """
    if scenarios is None:
        scenarios = resolve(selector)  # unknown id: one-line error, exit 2, nothing started
    run_id = uuid.uuid4().hex[:12]
    report_dir = report_dir or default_report_dir(run_id)
    session = ConsoleSession(inventory, lab_state_dir=lab_state_dir, lab_timeout=lab_timeout)
    recorder = RunRecorder(session, run_id, report_dir, strict=strict)
    results: list[ScenarioResult] = []
    lab_error: str | None = None
    try:
        await session.start()
        recorder.refresh_redactor()
        lab_error = session.lab_error
        if lab_error is None or run_despite_lab_error:
            results = await run_scenarios(session, scenarios, run_id)
            lab_error = None  # reported by the scenarios themselves
    finally:
        task = asyncio.current_task()
        interrupted = task is not None and task.cancelling() > 0
        if interrupted:
            session.bus.publish(Note(text="run interrupted: rolling back and healing",
                                     level="error"))
        await asyncio.shield(session.stop())
        status, code = overall(results, lab_error, strict)
        if interrupted:
            status, code = "error", EXIT_COULD_NOT_RUN
        recorder.finish(results, status, lab_error)
    # what the CLI prints, `--json` and the boot transcript show: redacted, as the reports
    redactor = recorder.journal.redactor
    return RunOutcome(run_id, code, status, report_dir, redactor.results(results),
                      redactor.text(lab_error) if lab_error else None)


def _write_reports(report_dir: Path, run_id: str, inventory: Inventory, redactor: Redactor,
                   results: list[ScenarioResult], status: str, started_wall: float,
                   duration: float, lab_error: str | None,
                   canary: dict[str, dict[str, Any]] | None = None,
                   strict: bool = False) -> None:
    # the edge: the results become JSON here, redacted, for the signed transcript
    redacted = redactor.results(results)  # what JUnit may show
    data = [r.as_json() for r in redacted]
    injected = [f for r in data for f in r["faults"]]
    config_digest = (hashlib.sha256(inventory.source.read_bytes()).hexdigest()
                     if inventory.source and inventory.source.exists() else None)
    body = {
        "run_id": run_id, "status": status, "target": inventory.name,
        "config": {"file": str(inventory.source) if inventory.source else None,
                   "sha256": config_digest},
        "started_at": started_wall,
        "started_at_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started_wall)),
        "finished_at": started_wall + duration, "duration_s": round(duration, 3),
        "system": system_info(), "strict": strict, "summary": counts(redacted),
        "scenarios": data,
        "faults": {"injected": len(injected),
                   "healed": sum(1 for f in injected if f["healed_at"]),
                   "unhealed": [f["id"] for f in injected if not f["healed_at"]]},
        "error": redactor.text(lab_error) if lab_error else None,
        "canary": canary or {},
        "journal": journal_section(report_dir / "journal.jsonl"),
    }
    doc = sign_transcript(body, load_or_create_key())
    write_json(report_dir / "transcript.json", doc)
    write_junit(redacted, report_dir / "junit.xml", strict=strict)
    write_markdown(doc, report_dir / "report.md")
