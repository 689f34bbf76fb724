"""JUnit XML (one testcase per check, one per scenario verdict) and the Markdown summary.

Both render the verdicts of :mod:`opsconsole.core.verdict`: a scenario that did not pass
always has a non-passing testcase carrying its reason — ``failure`` for fail, ``error``
for error, ``skipped`` for unknown (``failure`` under ``--strict``, where an unknown fails
the run), so JUnit says what the exit code says.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from junitparser import Error, Failure, JUnitXml, Skipped, TestCase, TestSuite

from ..core.results import ScenarioResult
from ..core.verdict import counts, not_passed, summary_line

PERCENTILE_KEYS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms")


def _result(status: str, message: str, strict: bool) -> list[Any]:
    """The JUnit result element of a non-passing status (none for pass and warn)."""
    if status == "fail":
        return [Failure(message)]
    if status == "unknown":
        return [Failure(f"unknown (--strict): {message}")] if strict else [Skipped(message)]
    if status in ("pass", "warn"):
        return []
    return [Error(message)]  # error, or anything unexpected: never green


def write_junit(scenarios: list[ScenarioResult], path: Path, strict: bool = False) -> None:
    xml = JUnitXml(name="opsconsole")
    for sc in scenarios:
        suite = TestSuite(sc.id)
        for check in sc.checks:
            case = TestCase(f"{check.phase}: {check.name}", classname=sc.id,
                            time=round(check.duration_s, 3))
            evidence = json.dumps(check.evidence, sort_keys=True)[:2000]
            case.result = _result(check.status, f"{check.status}; evidence: {evidence}",
                                  strict)
            if check.status == "warn":
                case.system_out = f"WARN; evidence: {evidence}"
            suite.add_testcase(case)
        verdict = TestCase("scenario verdict", classname=sc.id, time=round(sc.duration_s, 3))
        verdict.result = _result(sc.status, f"{sc.status}: {sc.reason or sc.status}", strict)
        suite.add_testcase(verdict)
        suite.update_statistics()
        xml.add_testsuite(suite)
    xml.update_statistics()
    xml.write(str(path), pretty=True)


def _md_escape(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def write_markdown(doc: dict[str, Any], path: Path) -> None:
    """The summary of a signed transcript (read back into results: this is an edge)."""
    scenarios = [ScenarioResult.from_json(d) for d in doc["scenarios"]]
    tally = doc.get("summary") or counts(scenarios)
    strict = bool(doc.get("strict"))
    lines = [f"# opsconsole run {doc['run_id']}", "",
             f"- status: **{doc['status'].upper()}**" + (" (--strict: any unknown fails)"
                                                         if strict else ""),
             f"- {summary_line(tally)}",
             *([f"- could not run: {_md_escape(doc['error'])}"] if doc.get("error") else []),
             f"- started: {doc['started_at_iso']} · duration {doc['duration_s']:.1f} s",
             f"- target: {doc['target']} · tool {doc['tool']['version']} · "
             f"host {doc['system']['hostname']} ({doc['system']['cores']} cores)",
             f"- journal: `{doc['journal']['file']}` ({doc['journal']['events']} events, "
             f"sha256 `{doc['journal']['sha256'][:16]}…`) · signed by the key in "
             "`transcript.json` (`opsconsole verify`)", "",
             ]
    missed = not_passed(scenarios, strict=strict)
    if missed:
        lines += ["## Not passed", ""]
        lines += [f"- **{status.upper()}** {sid}: {_md_escape(reason)}"
                  for status, sid, reason in missed]
        lines.append("")
    lines += ["| scenario | status | duration | checks passed | unknown |",
              "| --- | --- | --- | --- | --- |"]
    for sc in scenarios:
        passed = sum(c.status == "pass" for c in sc.checks)
        unknown = sum(c.status == "unknown" for c in sc.checks)
        lines.append(f"| {sc.id} | {sc.status} | {sc.duration_s:.1f} s | "
                     f"{passed}/{len(sc.checks)} | {unknown} |")
    if doc.get("canary"):
        lines += ["", "## Relay canaries (this run's window)", "",
                  "Messages whose fate was known (older than 5 s) during the run; "
                  "latency percentiles over the canary's recent messages.", "",
                  "| leaf | path | messages | delivered | lost | dup | reordered | p50 ms | "
                  "p99 ms |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for leaf, directions in doc["canary"].items():
            for direction, c in directions.items():
                p50 = "—" if c["p50_ms"] is None else f"{c['p50_ms']:.1f}"
                p99 = "—" if c["p99_ms"] is None else f"{c['p99_ms']:.1f}"
                lines.append(f"| {leaf} | {direction} | {c['messages']} | {c['delivered']} | "
                             f"{c['lost']} | {c['duplicated']} | {c['reordered']} | {p50} | "
                             f"{p99} |")
    for sc in scenarios:
        lines += ["", f"## {sc.id} — {sc.status.upper()}", "", sc.title, ""]
        if sc.reason:
            lines += [f"> {sc.reason}", ""]
        lines += ["| phase | check | status | time | evidence |", "| --- | --- | --- | --- | --- |"]
        for c in sc.checks:
            ev = _md_escape(json.dumps(c.evidence, sort_keys=True))[:160]
            lines.append(f"| {c.phase} | {_md_escape(c.name)} | {c.status} | "
                         f"{c.duration_s:.2f} s | {ev} |")
        pct = {k: v for k, v in sc.metrics.items() if k in PERCENTILE_KEYS}
        if pct:
            lines += ["", "| percentile | ms |", "| --- | --- |"]
            lines += [f"| {k.removesuffix('_ms')} | {v:.2f} |" for k, v in pct.items()]
        other = {k: v for k, v in sc.metrics.items() if k not in pct}
        if other:
            lines += ["", "| metric | value |", "| --- | --- |"]
            lines += [f"| {k} | {v:g} |" for k, v in sorted(other.items())]
        if sc.faults:
            lines += ["", "| fault | target | healed | how |", "| --- | --- | --- | --- |"]
            for f in sc.faults:
                healed = "yes" if f["healed_at"] else "**NO**"
                lines.append(f"| {f['fault']} | {f['target']} | {healed} | "
                             f"{_md_escape(f['heal'])} |")
    path.write_text("\n".join(lines) + "\n")
