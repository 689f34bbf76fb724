"""Journal chain, signed transcript, tamper detection, JUnit and replay (no lab needed)."""

from __future__ import annotations

import json
import shutil

from junitparser import JUnitXml

from opsconsole.cli import main as cli_main
from opsconsole.core.events import FaultInjected, Note
from opsconsole.core.results import ScenarioResult
from opsconsole.replay import ReplaySession
from opsconsole.report.journal import Journal, read_events, verify_chain
from opsconsole.report.redact import Redactor
from opsconsole.report.signing import load_or_create_key
from opsconsole.report.transcript import journal_section, sign_transcript, verify_transcript
from opsconsole.report.writers import write_junit
from opsconsole.systems.nats.events import NatsNodeSampled


def _make_run(tmp_path, secret: str = "s.supersecrettoken") -> tuple:
    journal = Journal(tmp_path / "journal.jsonl", Redactor([secret]))
    for i in range(5):
        journal.append(NatsNodeSampled(ts=1000.0 + i, name="nats-1", reachable=True,
                                       healthy=True, routes=2))
    journal.append(Note(ts=1006.0, text=f"oops the token is {secret}"))
    journal.append(FaultInjected(ts=1007.0, fault_id="f-1", fault="link.cut",
                                 target="leaf-u1~nats-1"))
    journal.close()
    scenarios = [{"id": "lab.x", "title": "t", "status": "fail", "reason": "r",
                  "duration_s": 1.0, "metrics": {"p99_ms": 3.0}, "faults": [],
                  "checks": [{"name": "a", "phase": "method", "status": "pass",
                              "evidence": {}, "duration_s": 0.1},
                             {"name": "b", "phase": "verify", "status": "fail",
                              "evidence": {"x": 1}, "duration_s": 0.2},
                             {"name": "c", "phase": "verify", "status": "unknown",
                              "evidence": {}, "duration_s": 0.3}]}]
    doc = sign_transcript({"run_id": "r1", "scenarios": scenarios,
                           "journal": journal_section(tmp_path / "journal.jsonl")},
                          load_or_create_key())
    (tmp_path / "transcript.json").write_text(json.dumps(doc, indent=2))
    return doc, scenarios


def test_signed_transcript_verifies_and_any_flipped_byte_fails(tmp_path, capsys) -> None:
    _make_run(tmp_path)
    ok, message = verify_transcript(tmp_path / "transcript.json")
    assert ok, message
    for name in ("transcript.json", "journal.jsonl"):
        for offset in (10, 200):
            copy = tmp_path / f"copy-{name}-{offset}"
            shutil.copytree(tmp_path, copy, ignore=shutil.ignore_patterns("copy-*"))
            data = bytearray((copy / name).read_bytes())
            data[offset] ^= 0x01
            (copy / name).write_bytes(bytes(data))
            ok, message = verify_transcript(copy / "transcript.json")
            assert not ok, f"flipping byte {offset} of {name} went unnoticed"
            assert message
    assert cli_main(["verify", str(tmp_path / "transcript.json")]) == 0
    assert "intact" in capsys.readouterr().out
    bad = tmp_path / "copy-journal.jsonl-200" / "transcript.json"
    assert cli_main(["verify", str(bad)]) == 1
    assert "journal" in capsys.readouterr().err


def test_journal_chain_detects_dropped_lines_and_redacts_secrets(tmp_path) -> None:
    _make_run(tmp_path)
    ok, _, _, count = verify_chain(tmp_path / "journal.jsonl")
    assert ok and count == 7
    text = (tmp_path / "journal.jsonl").read_text()
    assert "supersecrettoken" not in text and "[redacted]" in text
    lines = text.splitlines()
    (tmp_path / "dropped.jsonl").write_text("\n".join(lines[:2] + lines[3:]) + "\n")
    ok, reason, _, _ = verify_chain(tmp_path / "dropped.jsonl")
    assert not ok and "line 3" in reason


def test_junit_has_one_testcase_per_check_and_one_for_the_verdict(tmp_path) -> None:
    _, scenarios = _make_run(tmp_path)
    write_junit([ScenarioResult.from_json(s) for s in scenarios], tmp_path / "junit.xml")
    xml = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    cases = [case for suite in xml for case in suite]
    assert [c.name for c in cases] == ["method: a", "verify: b", "verify: c",
                                       "scenario verdict"]
    assert [c.is_passed for c in cases] == [True, False, False, False]
    assert xml.failures == 2 and xml.errors == 0 and xml.skipped == 1  # c is unknown
    assert cases[-1].result[0].message == "fail: r"


async def test_replay_feeds_the_journal_back_into_state(tmp_path) -> None:
    _make_run(tmp_path)
    assert [e.kind for e in read_events(tmp_path / "journal.jsonl")][-1] == "fault.injected"
    replay = ReplaySession(tmp_path / "journal.jsonl", speed=1000)
    await replay.start()
    import asyncio

    await asyncio.wait_for(replay.finished.wait(), 10)
    assert replay.state.nats.nodes["nats-1"].sample.routes == 2
    assert replay.state.active_faults == 1
    assert replay.clock() == 1007.0
    await replay.stop()
