"""`opsconsole history` as a process: the real entry point over signed transcripts (the
unit tests in tests/unit/test_history.py cover the rules; this one the exit codes and
streams of the installed command). No lab."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from opsconsole.report.signing import load_or_create_key
from opsconsole.report.transcript import sign_transcript, write_json


def _write(root: Path, i: int, cold: float) -> None:
    body = {"run_id": f"r{i}", "status": "pass", "started_at": 1_796_000_000.0 + i,
            "started_at_iso": f"2026-12-02T10:00:0{i}Z",
            "scenarios": [{"id": "sessions.cold-start", "status": "pass",
                           "metrics": {"cold_start_seconds": cold}}]}
    d = root / f"run{i}"
    d.mkdir(parents=True)
    write_json(d / "transcript.json", sign_transcript(body, load_or_create_key(root.parent)))


def _history(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPSCONSOLE_")}
    return subprocess.run([sys.executable, "-m", "opsconsole.cli", "history", *argv],
                          capture_output=True, text=True, timeout=60, check=False, env=env)


def test_history_exit_codes_as_a_process(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    reports.mkdir()
    for i, cold in enumerate([10.0, 11.0, 10.5]):
        _write(reports, i, cold)
    ok = _history(str(reports), "--json")
    assert ok.returncode == 0, ok.stderr
    assert [r["run_id"] for r in json.loads(ok.stdout)["runs"]] == ["r0", "r1", "r2"]
    _write(reports, 3, 20.0)  # twice the median: a regression
    bad = _history(str(reports), "--last", "3", "--tolerance", "10")
    assert bad.returncode == 1, bad.stderr
    assert ("REGRESSION sessions.cold-start/cold_start_seconds = 20: 90.48 % worse than the "
            "median 10.5 of the last 3 runs (lower is better; tolerance 10 %)") in bad.stdout
    missing = _history(str(tmp_path / "none"))
    assert missing.returncode == 2 and missing.stdout == ""
    assert missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr
