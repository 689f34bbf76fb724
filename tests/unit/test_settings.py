"""settings.py holds every environment knob: the same variable names as before, read when
a value is needed (not at import), and a bad value is one line naming the variable, exit 2."""

from __future__ import annotations

import os
import stat

import pytest

from opsconsole import cli
from opsconsole.errors import UserError
from opsconsole.faults.ledger import user_state_dir
from opsconsole.lab import binaries
from opsconsole.lab.state import DEFAULT_STATE_DIR, resolve_state_dir
from opsconsole.settings import Settings, SettingsError, env_name, settings
from opsconsole.systems.nats.packs.lab_faults import NatsNodePause

#: every variable settings reads; the names are contracts (scripts and CI set them)
VARIABLES = ["OPSCONSOLE_STATE_DIR", "OPSCONSOLE_LAB_DIR", "OPSCONSOLE_NATS_SERVER",
             "OPSCONSOLE_BAO", "OPSCONSOLE_LAB_PAUSE_S", "OPSCONSOLE_KEYMAP", "OPSCONSOLE_CONFIG",
             "XDG_STATE_HOME", "XDG_CONFIG_HOME"]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path) -> pytest.MonkeyPatch:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    return monkeypatch


def test_every_field_is_one_of_the_known_variables() -> None:
    assert sorted(env_name(f) for f in Settings.model_fields) == sorted(VARIABLES)


def test_defaults_without_any_variable(clean_env, tmp_path) -> None:
    s = settings()
    assert s.user_state_dir == tmp_path / "home" / ".local/state/opsconsole"
    assert s.keymap_file == tmp_path / "home" / ".config/opsconsole/keymap.toml"
    assert s.lab_pause_s == 5.0
    assert resolve_state_dir() == DEFAULT_STATE_DIR.resolve()
    assert NatsNodePause().pause_s == 5.0


def test_variables_are_read_at_call_time(clean_env, tmp_path) -> None:
    clean_env.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))
    clean_env.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    clean_env.setenv("OPSCONSOLE_LAB_DIR", str(tmp_path / "lab"))
    clean_env.setenv("OPSCONSOLE_LAB_PAUSE_S", "0.5")
    assert user_state_dir() == tmp_path / "xdg-state" / "opsconsole"
    assert oct(stat.S_IMODE(os.stat(user_state_dir()).st_mode)) == "0o700"
    assert settings().keymap_file == tmp_path / "xdg-config" / "opsconsole" / "keymap.toml"
    assert resolve_state_dir() == tmp_path / "lab"
    assert resolve_state_dir(tmp_path / "flag") == tmp_path / "flag"  # the flag wins
    assert NatsNodePause().pause_s == 0.5
    assert NatsNodePause().plan()[0] == "SIGSTOP nats-3 for 0.5 s"
    clean_env.setenv("OPSCONSOLE_STATE_DIR", str(tmp_path / "explicit"))
    clean_env.setenv("OPSCONSOLE_KEYMAP", str(tmp_path / "keys.toml"))
    assert user_state_dir() == tmp_path / "explicit"
    assert settings().keymap_file == tmp_path / "keys.toml"


def test_an_empty_variable_counts_as_unset(clean_env) -> None:
    for name in VARIABLES:
        clean_env.setenv(name, "")
    assert settings() == Settings.model_construct(**{f: Settings.model_fields[f].default
                                                     for f in Settings.model_fields})


def test_binary_overrides_must_be_executable_files(clean_env, tmp_path) -> None:
    fake = tmp_path / "nats-server"
    fake.write_text("#!/bin/sh\n")
    clean_env.setenv("OPSCONSOLE_NATS_SERVER", str(fake))
    with pytest.raises(UserError, match=f"^missing binary: OPSCONSOLE_NATS_SERVER={fake} is "
                                        "not an executable file$"):
        binaries.nats_server()
    fake.chmod(0o755)
    assert binaries.nats_server() == str(fake)
    clean_env.setenv("OPSCONSOLE_BAO", str(tmp_path / "no-such-bao"))
    with pytest.raises(UserError, match="OPSCONSOLE_BAO="):
        binaries.bao()


@pytest.mark.parametrize(("value", "why"), [
    ("abc", "input should be a valid number"),
    ("-1", "input should be greater than 0"),
    ("0", "input should be greater than 0"),
    ("inf", "input should be a finite number"),
])
def test_a_bad_value_is_one_line_naming_the_variable(clean_env, value, why) -> None:
    clean_env.setenv("OPSCONSOLE_LAB_PAUSE_S", value)
    with pytest.raises(SettingsError) as caught:
        settings()
    message = str(caught.value)
    assert message.startswith(f"environment variable OPSCONSOLE_LAB_PAUSE_S='{value}': {why}")
    assert "\n" not in message and caught.value.exit_code == 2


def test_the_cli_refuses_a_bad_value_before_doing_anything(clean_env, capsys) -> None:
    clean_env.setenv("OPSCONSOLE_LAB_PAUSE_S", "abc")
    assert cli.main(["scenarios", "list"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.splitlines() == ["opsconsole: environment variable OPSCONSOLE_LAB_PAUSE_S="
                                "'abc': input should be a valid number, unable to parse "
                                "string as a number"]
