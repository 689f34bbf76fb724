"""The plugin API from outside: an example plugin installed with pip (zero edits to
opsconsole) adds a system with a config section, a probe, a fault kind and a scenario; it
is listed, runs headless against a real HTTP server, and leaves no trace once removed. A
broken plugin is one line naming its distribution, and opsconsole carries on."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.helpers import install_plugins, run_cli, start_beacon

SCENARIO = "beacon.silence-detected"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_plugins(tmp_path_factory.mktemp("plugins"), "opsconsole-beacon")


def _env(site: Path | None, tmp: Path) -> dict[str, str]:
    env = {"OPSCONSOLE_STATE_DIR": str(tmp / "state")}
    if site is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])
    return env


def _inventory(tmp: Path, url: str) -> Path:
    path = tmp / "beacon.toml"
    path.write_text(f'name = "beacon-test"\n\n[beacon]\nurl = "{url}"\n')
    return path


def test_the_plugin_is_listed_and_leaves_no_trace_once_removed(site: Path, tmp_path) -> None:
    listed = run_cli("scenarios", "list", env=_env(site, tmp_path))
    assert listed.returncode == 0, listed.stderr
    assert SCENARIO in listed.stdout and listed.stderr == ""

    without = run_cli("scenarios", "list", env=_env(None, tmp_path))
    assert without.returncode == 0
    assert "beacon." not in without.stdout and "beacon" not in without.stderr
    gone = run_cli("run", "beacon", "--dry-run", env=_env(None, tmp_path))
    assert gone.returncode == 2 and "unknown scenario or pack 'beacon'" in gone.stderr


def test_the_plugins_scenario_runs_headless_against_the_real_target(site: Path,
                                                                    tmp_path) -> None:
    proc, url = start_beacon(tmp_path)
    try:
        out = run_cli("--config", str(_inventory(tmp_path, url)), "run", "beacon", "--json",
                      "--report", str(tmp_path / "out"), env=_env(site, tmp_path))
    finally:
        proc.kill()
        proc.wait()
    assert out.returncode == 0, out.stdout + out.stderr
    result = next(r for r in json.loads(out.stdout) if r["id"] == SCENARIO)
    assert result["status"] == "pass"
    names = [c["name"] for c in result["checks"]]
    assert "the beacon went silent" in names and "the beacon answers after the heal" in names


def test_a_beacon_that_cannot_be_silenced_fails_the_scenario(site: Path, tmp_path) -> None:
    """Negative control: the scenario's verdict comes from what the probe saw."""
    proc, url = start_beacon(tmp_path, deaf=True)
    try:
        out = run_cli("--config", str(_inventory(tmp_path, url)), "run", "beacon", "--json",
                      env=_env(site, tmp_path), timeout=90)
    finally:
        proc.kill()
        proc.wait()
    assert out.returncode == 1, out.stdout + out.stderr
    [result] = json.loads(out.stdout)
    assert result["status"] == "fail"
    silent = next(c for c in result["checks"] if c["name"] == "the beacon went silent")
    assert silent["status"] == "fail" and silent["evidence"]["status"] == 200


def test_a_broken_plugin_is_one_line_naming_its_distribution(tmp_path) -> None:
    site = install_plugins(tmp_path, "opsconsole-beacon", "opsconsole-broken")
    out = run_cli("scenarios", "list", env=_env(site, tmp_path))
    assert out.returncode == 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr
    assert lines[0].startswith("opsconsole: warning: plugin opsconsole-broken (broken): ")
    assert "ModuleNotFoundError" in lines[0] and "Traceback" not in out.stderr
    assert SCENARIO in out.stdout  # the working plugin and the built-ins are still there
    assert "vault-ha.health" in out.stdout
