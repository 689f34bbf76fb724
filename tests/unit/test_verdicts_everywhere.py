"""One verdict everywhere: `opsconsole run` and `opsconsole smoke`, in process, on fake
scenarios that pass, abort after a passed check, end unknown and break — the exit code,
the JSON, JUnit, Markdown, the transcript, the boot transcript and the CLI's lines agree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

from opsconsole import scenarios as scenario_registry
from opsconsole.cli import main as cli_main
from opsconsole.core.results import ScenarioResult
from opsconsole.core.verdict import run_verdict, scenario_status
from opsconsole.scenarios.engine import Run, Scenario, ScenarioOptions, outcome


class FakeOptions(ScenarioOptions):
    mode: str = "safe"  # what `opsconsole smoke` passes to its phases
    memory_budget_mib: float = 0.0


class Fake(Scenario):
    needs_lab = False
    Options = FakeOptions


class Passes(Fake):
    id, title = "unit.passes", "passes"

    async def method(self, run: Run) -> None:
        await run.record("one plus one", outcome(1 + 1 == 2, sum=2))


class AbortsAfterAPass(Fake):
    id, title = "unit.aborts", "aborts after a passed check"

    async def method(self, run: Run) -> None:
        await run.record("first step", outcome(2 > 1))
        await run.wait_until("a condition that never holds", lambda: False, 0.1)


class AllUnknown(Fake):
    id, title = "unit.unknown", "only unknowns"

    async def method(self, run: Run) -> None:
        await run.record("capability", ("unknown", {"reason": "the target has no admin API"}))


class Breaks(Fake):
    id, title = "unit.breaks", "its code breaks"

    async def method(self, run: Run) -> None:
        raise ValueError("bad arithmetic in the pack")


def _fake_pack(monkeypatch: pytest.MonkeyPatch, name: str, classes: list[type[Scenario]],
               ids: list[str] | None = None) -> None:
    if ids:  # the same behaviour under other ids (the smoke phases)
        classes = [type(cls.__name__, (cls,), {"id": sid}) for cls, sid in
                   zip(classes, ids, strict=True)]
    monkeypatch.setitem(scenario_registry.PACKS, name, classes)


@pytest.fixture
def config(unreachable_inventory: Path) -> Path:
    return unreachable_inventory


def _junit_verdicts(report: Path) -> dict[str, Any]:
    xml = JUnitXml.fromfile(str(report / "junit.xml"))
    out: dict[str, Any] = {}
    for suite in xml:
        for case in suite:
            if case.name == "scenario verdict":
                out[suite.name] = case.result[0] if case.result else None
    return out


def test_run_gives_the_same_verdict_in_every_output(monkeypatch, config, tmp_path,
                                                    capsys) -> None:
    _fake_pack(monkeypatch, "unit", [Passes, AbortsAfterAPass, AllUnknown, Breaks])
    report = tmp_path / "report"
    code = cli_main(["--config", str(config), "run", "unit", "--json", "--report",
                     str(report)])
    out, err = capsys.readouterr()
    assert code == 1  # a failed (aborted) scenario fails the run
    status = {r["id"]: r["status"] for r in json.loads(out)}
    assert status == {"unit.passes": "pass", "unit.aborts": "fail", "unit.unknown": "unknown",
                      "unit.breaks": "error"}

    verdicts = _junit_verdicts(report)
    assert verdicts["unit.passes"] is None
    assert isinstance(verdicts["unit.aborts"], Failure)
    assert "aborted: timed out" in verdicts["unit.aborts"].message
    assert isinstance(verdicts["unit.unknown"], Skipped)
    assert "no check could decide" in verdicts["unit.unknown"].message
    assert isinstance(verdicts["unit.breaks"], Error)
    assert "bad arithmetic in the pack" in verdicts["unit.breaks"].message

    transcript = json.loads((report / "transcript.json").read_text())
    assert transcript["status"] == "fail"
    assert transcript["summary"]["scenarios"] == {"pass": 1, "fail": 1, "unknown": 1,
                                                  "error": 1}
    assert transcript["summary"]["checks"]["unknown"] == 1
    markdown = (report / "report.md").read_text()
    for sid in ("unit.aborts", "unit.unknown", "unit.breaks"):
        assert sid in markdown.split("## Not passed", 1)[1].split("|", 1)[0], sid
        assert any(line.startswith(f"  {status[sid]}: {sid}: ")
                   for line in err.splitlines()), err
    assert "FAIL · 4 scenarios: 1 pass, 1 fail, 1 unknown, 1 error" in err
    assert "Traceback" not in err


def test_an_unknown_passes_the_run_unless_strict(monkeypatch, config, tmp_path,
                                                 capsys) -> None:
    _fake_pack(monkeypatch, "unit", [Passes, AllUnknown])
    lenient = tmp_path / "lenient"
    assert cli_main(["--config", str(config), "run", "unit", "--report", str(lenient)]) == 0
    err = capsys.readouterr().err
    assert "UNKNOWN · 2 scenarios: 1 pass, 1 unknown" in err
    assert "  unknown: unit.unknown: no check could decide" in err
    assert isinstance(_junit_verdicts(lenient)["unit.unknown"], Skipped)

    strict = tmp_path / "strict"
    assert cli_main(["--config", str(config), "run", "unit", "--strict", "--report",
                     str(strict)]) == 1
    err = capsys.readouterr().err
    assert "run " in err and ": FAIL · " in err
    verdict = _junit_verdicts(strict)["unit.unknown"]
    assert isinstance(verdict, Failure) and "unknown (--strict)" in verdict.message
    assert json.loads((strict / "transcript.json").read_text())["strict"] is True


def test_strict_fails_on_an_unknown_check_inside_a_passing_scenario(monkeypatch, config,
                                                                    tmp_path, capsys) -> None:
    class Mixed(Fake):
        id, title = "unit.mixed", "a pass and an unknown"

        async def method(self, run: Run) -> None:
            await run.record("works", outcome(3 > 2))
            await run.record("not offered", ("unknown", {"reason": "no such endpoint"}))

    _fake_pack(monkeypatch, "unit", [Mixed])
    assert cli_main(["--config", str(config), "run", "unit", "--report",
                     str(tmp_path / "a")]) == 0
    capsys.readouterr()
    assert cli_main(["--config", str(config), "run", "unit", "--strict", "--report",
                     str(tmp_path / "b")]) == 1
    err = capsys.readouterr().err
    assert "  unknown: unit.mixed: check 'not offered' unknown: no such endpoint" in err
    xml = JUnitXml.fromfile(str(tmp_path / "b" / "junit.xml"))
    cases = {c.name: c for suite in xml for c in suite}
    assert isinstance(cases["method: not offered"].result[0], Failure)


def test_smoke_phases_that_abort_or_stay_unknown_are_never_pass(monkeypatch, config, tmp_path,
                                                                capsys) -> None:
    _fake_pack(monkeypatch, "smoke", [Passes, AbortsAfterAPass, AllUnknown],
               ids=["smoke.config", "smoke.boot", "smoke.auth"])
    report = tmp_path / "smoke"
    code = cli_main(["--config", str(config), "smoke", "--report", str(report), "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    summary = json.loads(out)
    assert summary["status"] == "fail"
    assert any(f.startswith("2 boot: FAIL: aborted: timed out") for f in summary["failures"])
    assert any(u.startswith("4 authentication: UNKNOWN: no check could decide")
               for u in summary["unknowns"])
    boot = json.loads(next(report.glob("boot_transcript_*.json")).read_text())
    phases = {p["id"]: p["status"] for p in boot["phases"]}
    assert phases == {"smoke.config": "pass", "smoke.boot": "fail", "smoke.auth": "unknown"}
    assert boot["status"] == "fail" and boot["failures"] == summary["failures"]
    assert "  failed: 2 boot: FAIL: aborted" in err
    assert "  unknown: 4 authentication: UNKNOWN" in err
    verdicts = _junit_verdicts(report)
    assert isinstance(verdicts["smoke.boot"], Failure)
    assert isinstance(verdicts["smoke.auth"], Skipped)


def test_a_smoke_whose_only_checks_are_unknown_is_unknown_not_pass(monkeypatch, config,
                                                                  tmp_path, capsys) -> None:
    _fake_pack(monkeypatch, "smoke", [AllUnknown], ids=["smoke.auth"])
    code = cli_main(["--config", str(config), "smoke", "--report", str(tmp_path / "s")])
    err = capsys.readouterr().err
    assert code == 0 and "smoke UNKNOWN: 0 passed, 0 failed, 0 warned, 1 unknown" in err
    assert "PASS" not in err
    code = cli_main(["--config", str(config), "smoke", "--strict", "--report",
                     str(tmp_path / "t")])
    assert code == 1 and "smoke FAIL" in capsys.readouterr().err


@pytest.mark.parametrize(("statuses", "strict", "expected"), [
    (["pass", "pass"], False, ("pass", 0)),
    (["pass", "unknown"], False, ("unknown", 0)),
    (["pass", "unknown"], True, ("fail", 1)),
    (["pass", "fail", "error"], False, ("fail", 1)),
    (["pass", "error"], False, ("error", 2)),
    ([], False, ("error", 2)),
])
def test_run_verdict_table(statuses, strict, expected) -> None:
    results = [ScenarioResult(f"s{i}", "", s) for i, s in enumerate(statuses)]
    assert run_verdict(results, strict=strict) == expected


def test_scenario_status_from_checks() -> None:
    assert scenario_status([]) == "unknown"
    assert scenario_status(["unknown", "unknown"]) == "unknown"
    assert scenario_status(["unknown", "warn"]) == "pass"
    assert scenario_status(["pass", "fail", "unknown"]) == "fail"


def test_an_invalid_inventory_exits_2_everywhere_but_config_check(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\n[vault]\n[[vault.nodes]]\nname = "v1"\napi_addr = "ftp://x"\n')
    for argv in (["run", "smoke.config"], ["run", "smoke", "--dry-run"], ["smoke"],
                 ["vault", "health"], ["heal"], ["lab", "status"]):
        assert cli_main(["--config", str(bad), *argv]) == 2, argv
        err = capsys.readouterr().err
        assert "vault.nodes[0].api_addr" in err and "Traceback" not in err, (argv, err)
    assert cli_main(["--config", str(tmp_path / "missing.toml"), "run", "smoke"]) == 2
    assert "missing.toml" in capsys.readouterr().err
    assert cli_main(["config", "check", str(bad)]) == 1
    assert "vault.nodes[0].api_addr" in capsys.readouterr().out


def test_replay_of_a_file_that_is_not_a_journal_exits_2_without_a_console(tmp_path,
                                                                         capsys) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("these are my notes\nnot events\n")
    assert cli_main(["replay", str(text)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an opsconsole journal (line 1 is not JSON)" in err
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert cli_main(["replay", str(empty)]) == 2
    assert "no events" in capsys.readouterr().err
    other = tmp_path / "other.jsonl"
    other.write_text('{"seq": 0, "prev": "x", "event": {"kind": "no.such.kind"}}\n')
    assert cli_main(["replay", str(other)]) == 2
    assert "line 1" in capsys.readouterr().err
    assert cli_main(["replay", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
    assert cli_main(["replay", str(text), "--speed", "0"]) == 2


SECRET = "s.hunter2-never-shown"


class QuotesTheToken(Fake):
    """A careless check that puts the inventory's Vault token in its evidence and its
    scenario's reason: redaction must catch it in every output."""

    id, title = "unit.quotes", "quotes the token"

    async def method(self, run: Run) -> None:
        token = run.inventory.vault.token.resolve()
        await run.record("careless", outcome(2 > 3, token=token, note=f"used {token}"))
        await run.wait_until(f"a login with {token}", lambda: False, 0.1)


def test_a_secret_quoted_by_a_check_is_redacted_in_every_output(monkeypatch, tmp_path,
                                                                capsys) -> None:
    (tmp_path / "token").write_text(SECRET)
    config = tmp_path / "vault.toml"
    config.write_text('name = "unit"\n[vault]\ntoken_file = "token"\n[[vault.nodes]]\n'
                      'name = "v1"\napi_addr = "http://127.0.0.1:1"\n')
    _fake_pack(monkeypatch, "unit", [QuotesTheToken])
    code = cli_main(["--config", str(config), "run", "unit", "--json", "--report",
                     str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert code == 1 and "[redacted]" in out  # the check ran, and quoted it
    code = cli_main(["--config", str(config), "run", "unit", "--report", str(tmp_path / "r2")])
    table, lines = capsys.readouterr()
    assert code == 1 and "a login with [redacted]" in lines  # the abort reason
    _fake_pack(monkeypatch, "smoke", [QuotesTheToken], ids=["smoke.auth"])
    cli_main(["--config", str(config), "smoke", "--json", "--report", str(tmp_path / "smoke")])
    smoke_out, smoke_err = capsys.readouterr()
    written = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file()
                      and p.name != "token")
    for text in (out, err, table, lines, smoke_out, smoke_err, written):
        assert SECRET not in text
    boot = next((tmp_path / "smoke").glob("boot_transcript_*.json")).read_text()
    assert "[redacted]" in boot
