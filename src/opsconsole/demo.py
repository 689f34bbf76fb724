"""The demo walkthrough: a guided tour on the lab, one narrated step at a time.

Each step runs ordinary scenarios through the engine (the same ones `opsconsole run`
uses, recorded by one :class:`RunRecorder`), or heals, or watches; the last step writes
the run's signed report and verifies it. The TUI (``opsconsole demo``) shows the
narration and advances on a key or, with ``--auto``, by itself. Nothing here imports
textual.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .core.results import ScenarioResult
from .report.transcript import verify_transcript
from .runner import RunRecorder, default_report_dir, overall, run_scenarios
from .scenarios import resolve
from .session import ConsoleSession


@dataclass(frozen=True)
class DemoStep:
    title: str
    narration: str
    scenarios: tuple[tuple[str, dict[str, Any]], ...] = ()
    action: str = ""  # "" | "watch" | "heal" | "report"
    watch_s: float = 0.0


STEPS: tuple[DemoStep, ...] = (
    DemoStep("Lab health", "Three NATS nodes, two leaves and a three-node OpenBao Raft "
             "cluster, all real processes on this machine. The Cluster health pane shows "
             "every node; vault-ha.health checks one leader and three voters.",
             (("vault-ha.health", {}),)),
    DemoStep("Provision a vault instance", "A member asks the provisioning API for a vault "
             "instance: an EC2 host (moto) with its own leaf NATS server and Vault Manager. "
             "Watch it appear in the Vault instances pane; the scenario terminates it.",
             (("vault-instance.initialize", {}),)),
    DemoStep("Watch the relay flow", "Canaries cross every leaf link both ways at a constant "
             "rate: the NATS relay flow pane shows rates, loss and duplicates per path.",
             action="watch", watch_s=5.0),
    DemoStep("Kill the Vault leader", "kill -9 of the active OpenBao node: measure detection, "
             "the new leader and the first successful write; the old leader rejoins. The "
             "new leader is highlighted in the Cluster health pane.",
             (("vault-ha.failover", {}),)),
    DemoStep("Partition a NATS leaf hub", "Cut the link between a leaf and its hub in the "
             "fault proxy: the leaf moves to another hub and the relay keeps working.",
             (("lab-faults.leaf-hub-cut", {}),)),
    DemoStep("A short load run", "An open-loop 100 req/s KV load for 10 s; latency from the "
             "intended send time lands in the Scale-test histograms pane live.",
             (("vault-ha.load", {"rate": 100.0, "duration": 10.0}),)),
    DemoStep("Heal everything", "Every fault is in a durable ledger with its undo; heal "
             "whatever is still open (the scenarios healed their own).", action="heal"),
    DemoStep("The signed report", "The whole walkthrough was journaled (hash-chained) and "
             "is now signed with Ed25519; verify it as an auditor would.", action="report"),
)


@dataclass
class StepResult:
    status: str = "pending"  # pending | running | pass | fail
    detail: str = ""
    started: float = 0.0
    duration_s: float = 0.0


@dataclass
class Demo:
    """Runs the steps on a started session; ``results`` says where each one stands."""

    session: ConsoleSession
    steps: tuple[DemoStep, ...] = STEPS
    report_dir: Path | None = None
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    results: list[StepResult] = field(default_factory=list)
    scenario_results: list[ScenarioResult] = field(default_factory=list)
    verified: bool | None = None
    verdict: str = ""

    def __post_init__(self) -> None:
        self.results = [StepResult() for _ in self.steps]
        self.report_dir = self.report_dir or default_report_dir(self.run_id)
        self.recorder = RunRecorder(self.session, self.run_id, self.report_dir)

    @property
    def done(self) -> bool:
        return all(r.status in ("pass", "fail") for r in self.results)

    @property
    def passed(self) -> bool:
        return self.done and all(r.status == "pass" for r in self.results) and bool(
            self.verified)

    async def run_step(self, index: int) -> StepResult:
        step, res = self.steps[index], self.results[index]
        res.status, res.started = "running", time.monotonic()
        try:
            if step.scenarios:
                res.status, res.detail = await self._scenarios(step)
            elif step.action == "watch":
                await asyncio.sleep(step.watch_s)
                res.status, res.detail = "pass", f"watched for {step.watch_s:g} s"
            elif step.action == "heal":
                assert self.session.faults is not None
                healed = await self.session.faults.heal_all()
                bad = [r for r in healed if r.status != "healed"]
                res.status = "fail" if bad else "pass"
                res.detail = f"healed {len(healed) - len(bad)} of {len(healed)} open fault(s)"
            elif step.action == "report":
                res.status, res.detail = self._report()
        except Exception as exc:  # a step that breaks is a failed step, not a crash
            res.status, res.detail = "fail", f"{type(exc).__name__}: {exc}"
        res.duration_s = time.monotonic() - res.started
        return res

    async def _scenarios(self, step: DemoStep) -> tuple[str, str]:
        parts, ok = [], True
        for sid, options in step.scenarios:
            results = await run_scenarios(self.session, resolve(sid, options), self.run_id)
            self.scenario_results += results
            for r in results:
                passed = sum(c.status == "pass" for c in r.checks)
                parts.append(f"{r.id} {r.status.upper()} ({passed}/{len(r.checks)} "
                             "checks)" + _headline(r.metrics))
                ok = ok and r.status == "pass"
        return ("pass" if ok else "fail"), "; ".join(parts)

    def _report(self) -> tuple[str, str]:
        status, _ = overall(self.scenario_results, None)
        path = self.recorder.finish(self.scenario_results, status) / "transcript.json"
        self.verified, message = verify_transcript(path)
        self.verdict = message
        return ("pass" if self.verified else "fail"), \
            f"run {status.upper()} · {message.replace(str(path) + ': ', 'transcript.json ')}"

    def close(self) -> None:
        """Write the report of what ran if the walkthrough stopped before its last step."""
        if self.verified is None and not self.recorder.finished:
            status, _ = overall(self.scenario_results, None)
            self.recorder.finish(self.scenario_results, status)

    async def run_all(self) -> None:
        for i in range(len(self.steps)):
            await self.run_step(i)


HEADLINE_METRICS = ("failover_seconds", "leaf_failover_seconds", "throughput_rps", "p99_ms")


def _headline(metrics: dict[str, float]) -> str:
    shown = [f"{k}={metrics[k]:g}" for k in HEADLINE_METRICS if k in metrics]
    return f" · {', '.join(shown)}" if shown else ""
