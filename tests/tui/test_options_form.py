"""The console's options form: built from the scenario's options model, a bad value is
shown in the form (which stays open), a good one reaches the run typed."""

from __future__ import annotations

from textual.widgets import Input, Static

from opsconsole.tui.screens import OptionsScreen

from ..scenario_fakes import SEEN, Counting
from .fixtures import app_with_pack, until


async def test_the_form_validates_and_runs_with_the_values_typed(monkeypatch, tmp_path) -> None:
    SEEN.clear()
    _, app = app_with_pack(monkeypatch, tmp_path, [Counting])
    async with app.run_test(size=(160, 48)) as pilot:
        app.launch_scenario("unit.count")
        await until(pilot, lambda: isinstance(app.screen, OptionsScreen)
                    and bool(app.screen.query("#option-count")), "the options form")
        count = app.screen.query_one("#option-count", Input)
        assert count.value == "3"  # the model's default
        count.value = "0"
        count.focus()
        await pilot.press("enter")
        error = app.screen.query_one("#options-error", Static)
        await until(pilot, lambda: "greater than 0" in str(error.render()), "the error")
        assert "--count '0': Input should be greater than 0 (unit.count)" in str(error.render())
        assert isinstance(app.screen, OptionsScreen) and SEEN == []  # nothing ran

        count.value = "7"
        verbose = app.screen.query_one("#option-verbose", Input)
        assert verbose.value == "false"
        verbose.value = "true"
        await pilot.press("ctrl+r")
        await until(pilot, lambda: any("unit.count: PASS" in n.message
                                       for n in app._notifications), "the run to pass")
        assert SEEN == [(7, True)]

        app.launch_scenario("unit.count")
        await until(pilot, lambda: isinstance(app.screen, OptionsScreen), "the form again")
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, OptionsScreen), "a cancel")
        # cancelled: no second run was even started (the run is a worker of this group)
        assert not [w for w in app.workers if w.group == "scenario" and not w.is_finished]
        assert SEEN == [(7, True)]
