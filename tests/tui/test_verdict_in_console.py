"""A scenario launched from the console ends with the same verdict as its report: an
aborted one is FAIL in the notification, the header and the event log, never green."""

from __future__ import annotations

import json

from opsconsole.scenarios.engine import Run, Scenario, outcome

from .fixtures import app_with_pack, until


class AbortsAfterAPass(Scenario):
    id, title = "unit.aborts", "aborts after a passed check"
    needs_lab = False

    async def method(self, run: Run) -> None:
        await run.record("first step", outcome(2 > 1))
        await run.wait_until("a condition that never holds", lambda: False, 0.1)


async def test_an_aborted_scenario_is_fail_in_the_console_and_its_report(
        monkeypatch, tmp_path) -> None:
    session, app = app_with_pack(monkeypatch, tmp_path, [AbortsAfterAPass])
    async with app.run_test(size=(160, 48)) as pilot:
        app.launch_scenario("unit.aborts")
        await until(pilot, lambda: session.state.scenario is not None
                    and session.state.scenario.status != "running"
                    and any("report" in n.message for n in app._notifications),
                    "the scenario to finish")
        assert session.state.scenario.status == "fail"
        note = next(n for n in app._notifications if "report" in n.message)
        assert note.severity == "error" and "unit.aborts: FAIL" in note.message
        assert "aborted: timed out" in note.message
        await until(pilot, lambda: "last unit.aborts: FAIL" in app.sub_title,
                    "the header to show the verdict")
        assert any("scenario unit.aborts FAIL" in e.text and e.level == "error"
                   for e in session.state.timeline)
    [report] = list(tmp_path.glob("*/transcript.json"))
    assert json.loads(report.read_text())["status"] == "fail"
