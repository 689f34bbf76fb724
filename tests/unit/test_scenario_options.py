"""Scenario options: typed models, the `run` flags and `-o key=value` derived from them."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from opsconsole.cli import main as cli_main
from opsconsole.scenarios import all_scenarios
from opsconsole.scenarios.engine import ScenarioOptions
from opsconsole.scenarios.options import add_option_flags, fields_of

from ..scenario_fakes import Counting


@pytest.fixture
def config(unreachable_inventory: Path) -> Path:
    return unreachable_inventory


def _plan(config: Path, capsys, *args: str) -> list[str]:
    assert cli_main(["--config", str(config), "run", "vault-ha.load", "--dry-run", "--json",
                     *args]) == 0
    [item] = json.loads(capsys.readouterr().out)
    return item["method"]


def test_flags_and_o_assignments_reach_the_scenario_typed(config, capsys) -> None:
    assert _plan(config, capsys)[0].startswith("seed 100 keys; offer 500 req/s for 30 s with "
                                               "32 connections, 90% read/10% write")
    method = _plan(config, capsys, "--rate", "200", "-o", "duration=5", "-o", "mix=50/50")
    assert method[0].startswith("seed 100 keys; offer 200 req/s for 5 s with 32 connections, "
                                "50% read/50% write")
    assert _plan(config, capsys, "-o", "find-max=true")[0].startswith(
        "step the offered rate up from 250 req/s")
    assert _plan(config, capsys, "--find-max")[0].startswith("step the offered rate up")


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "0"], "--rate '0': Input should be greater than 0 (vault-ha.load)"),
    (["--rate", "fast"], "--rate 'fast': Input should be a valid number"),
    (["--mix", "70/20"], "--mix '70/20': '70/20': the percentages must add up to 100"),
    (["-o", "users=-3"], "--users '-3': Input should be greater than 0"),
    (["-o", "nosuch=1"], "--nosuch does not apply to vault-ha.load (it applies to: no "
                         "scenario)"),
    (["-o", "agents=5"], "--agents does not apply to vault-ha.load (it applies to: "
                         "mesh.scale)"),
    (["-o", "rate"], "-o 'rate': expected KEY=VALUE"),
])
def test_a_bad_option_is_one_line_exit_2_before_anything_runs(config, capsys, args,
                                                              message) -> None:
    assert cli_main(["--config", str(config), "run", "vault-ha.load", "--dry-run",
                     *args]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert "Traceback" not in err


def test_every_scenario_options_model_is_strict_and_documented() -> None:
    for scenario in all_scenarios():
        assert issubclass(scenario.Options, ScenarioOptions), scenario.id
        with pytest.raises(ValidationError):
            scenario.Options.model_validate({"no_such_option": 1})
        for f in fields_of(scenario):
            assert f.field.description, (scenario.id, f.name)  # the flag's help text


def test_a_new_scenarios_model_makes_its_own_flags() -> None:
    parser = argparse.ArgumentParser()
    names = add_option_flags(parser.add_argument_group("options"), [Counting()])
    assert names == ["count", "verbose"]
    args = parser.parse_args(["--count", "7", "--verbose"])
    assert (args.count, args.verbose) == ("7", True)  # text: the model validates it
    scenario = Counting()
    assert scenario.options.count == 3
    scenario.configure(count=args.count)
    assert scenario.options.count == 7 and isinstance(scenario.options.count, int)
    help_text = parser.format_help()
    assert "--count N" in help_text and "unit.count: how many (default 3)" in help_text
