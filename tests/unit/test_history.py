"""`opsconsole history` (issue 18, item 7): past runs from signed transcripts made with the
project's own signer and writer, and regressions against the median of the last N runs.
Negative controls: no regression → exit 0; one → exit 1 naming metric, value, median and
tolerance; a tampered transcript is reported and left out."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from opsconsole.cli import main as cli_main
from opsconsole.report.history import direction, load_history, regressions, transcripts
from opsconsole.report.signing import load_or_create_key
from opsconsole.report.transcript import sign_transcript, write_json


@pytest.fixture(autouse=True)
def state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("OPSCONSOLE_STATE_DIR", str(tmp_path / "state"))


def write_run(root: Path, i: int, cold: float, rate: float = 1.0, status: str = "pass",
              extra: dict[str, float] | None = None) -> Path:
    """One report dir with a signed transcript, as `opsconsole run --report` leaves it."""
    started = 1_796_000_000.0 + i * 3600
    body = {"run_id": f"run{i:02d}", "status": status, "target": "lab",
            "started_at": started,
            "started_at_iso": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "scenarios": [
                {"id": "sessions.cold-start", "status": status,
                 "metrics": {"cold_start_seconds": cold, "estimated_cost_usd": 0.0002,
                             **(extra or {})}},
                {"id": "sessions.failure-recovery", "status": "pass",
                 "metrics": {"burst_success_rate": rate, "orphans": 0, "peak": 3}}]}
    d = root / f"2026-run{i:02d}"
    d.mkdir(parents=True)
    write_json(d / "transcript.json", sign_transcript(body, load_or_create_key()))
    return d


def test_direction_rule() -> None:
    lower = ("cold_start_seconds", "p99_ms", "estimated_cost_usd", "error_rate", "orphans",
             "session_email_to_preview_s")
    assert all(direction(m) == "lower" for m in lower)
    assert direction("achieved_rps") == direction("burst_success_rate") == "higher"
    assert direction("peak") is None


def test_no_regression_exits_0(tmp_path, capsys) -> None:
    for i, cold in enumerate([10.0, 12.0, 11.0, 30.0, 10.5]):  # one slow run in the past
        write_run(tmp_path, i, cold)
    assert cli_main(["history", str(tmp_path), "--last", "3", "--tolerance", "10"]) == 0
    out = capsys.readouterr().out
    assert "run04" in out and "sessions.cold-start, sessions.failure-recovery" in out
    assert "sessions.cold-start/cold_start_seconds = 10.5" in out
    assert "no regression in run run04" in out and "REGRESSION" not in out


def test_a_regression_exits_1_naming_metric_value_median_and_tolerance(tmp_path,
                                                                       capsys) -> None:
    for i, cold in enumerate([10.0, 12.0, 11.0, 13.0]):
        write_run(tmp_path, i, cold)
    write_run(tmp_path, 4, 13.0, rate=0.5)  # cold 13 vs median 12 (+8.3 %): within 10 %
    assert cli_main(["history", str(tmp_path), "--last", "3"]) == 1
    out = capsys.readouterr().out
    [line] = [x for x in out.splitlines() if x.startswith("REGRESSION")]
    assert line == ("REGRESSION sessions.failure-recovery/burst_success_rate = 0.5: 50 % "
                    "worse than the median 1 of the last 3 runs (higher is better; "
                    "tolerance 10 %)")
    assert cli_main(["history", str(tmp_path), "--last", "3", "--tolerance", "5",
                     "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["judged"] == "run04" and doc["tolerance_pct"] == 5.0
    assert {g["metric"]: (g["value"], g["median"]) for g in doc["regressions"]} == {
        "sessions.cold-start/cold_start_seconds": (13.0, 12.0),
        "sessions.failure-recovery/burst_success_rate": (0.5, 1.0)}


def test_a_zero_median_lower_is_better_metric_regresses_on_any_value(tmp_path) -> None:
    for i in range(3):
        write_run(tmp_path, i, 10.0)
    write_run(tmp_path, 3, 10.0, extra={"orphans": 0})
    runs, _ = load_history(transcripts([tmp_path]))
    assert regressions(runs, 5, 0.1) == []  # the other scenario's orphans are not these
    write_run(tmp_path, 4, 10.0, extra={"orphans": 1})
    runs, _ = load_history(transcripts([tmp_path]))
    [g] = regressions(runs, 5, 0.1)
    assert (g.metric, g.value, g.median, g.worse_pct) == ("sessions.cold-start/orphans", 1,
                                                          0, None)
    assert "∞ % worse than the median 0" in g.line()


def test_a_tampered_transcript_is_reported_and_left_out(tmp_path, capsys) -> None:
    for i, cold in enumerate([10.0, 10.0, 10.0]):
        write_run(tmp_path, i, cold)
    bad = write_run(tmp_path, 3, 10.0) / "transcript.json"
    bad.write_text(bad.read_text().replace('"cold_start_seconds": 10.0',
                                           '"cold_start_seconds": 99.0'))
    assert cli_main(["history", str(tmp_path), "--json"]) == 0  # the 99 s is not judged
    doc = json.loads(capsys.readouterr().out)
    assert [r["run_id"] for r in doc["runs"]] == ["run00", "run01", "run02"]
    assert doc["rejected"] == [{"transcript": str(bad), "reason": f"{bad}: signature does "
                                "not match its content (modified)"}]
    assert cli_main(["history", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    assert "left out" in err and "modified" in err


@pytest.mark.parametrize("argv, says", [
    (["history", "/no/such/dir"], "DIR /no/such/dir: no such file or directory"),
    (["history", "{empty}"], "no transcript.json under"),
])
def test_bad_input_is_one_line_exit_2(argv, says, tmp_path, capsys) -> None:
    argv = [a.replace("{empty}", str(tmp_path)) for a in argv]
    assert cli_main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and says in err


@pytest.mark.parametrize("flag", [["--last", "0"], ["--tolerance", "-1"],
                                  ["--tolerance", "x"]])
def test_bad_flags_are_one_line_exit_2(flag, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit) as caught:
        cli_main(["history", str(tmp_path), *flag])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and flag[0] in err and "Traceback" not in err
