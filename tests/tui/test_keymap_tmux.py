"""The keymap in a real terminal (tmux): a keymap.toml moving `help` to F1 takes effect, and
a bad one stops the console before it starts. No lab: the inventory's only NATS node is a
closed port, which the console shows as unreachable."""

from __future__ import annotations

import os
import re
import shlex
import sys

import pytest

from opsconsole.lab.ports import free_ports

from ..helpers import REPO, run_cli, wait_until
from .test_console_tmux import Tmux

HELP_TITLE = "Keys — remap any binding by its id"


def _inventory(tmp_path) -> str:
    port = free_ports(1)[0]
    path = tmp_path / "inventory.toml"
    path.write_text(f'name = "keys"\nread_only = true\n\n[[nats]]\nname = "central"\n\n'
                    f'[[nats.nodes]]\nname = "nats-1"\nclient_url = "nats://127.0.0.1:{port}"\n'
                    f'monitor_url = "http://127.0.0.1:{port}"\n')
    return str(path)


class Screen:
    """Reads the tmux pane; keeps the last read, to show when a wait times out."""

    def __init__(self, tmux: Tmux) -> None:
        self.tmux = tmux
        self.last = ""

    def text(self) -> str:
        self.last = self.tmux.screen()
        return self.last

    def footer(self) -> str:
        lines = [ln for ln in self.text().splitlines() if ln.strip()]
        return lines[-1] if lines else ""


def test_a_keymap_moving_help_to_f1_takes_effect(tmp_path) -> None:
    config_home = tmp_path / "config"
    (config_home / "opsconsole").mkdir(parents=True)
    (config_home / "opsconsole" / "keymap.toml").write_text('help = "f1"\n')
    exit_file = tmp_path / "exit-code"
    console = shlex.join([sys.executable, "-m", "opsconsole.cli", "--config",
                          _inventory(tmp_path)])
    tmux = Tmux(f"opsconsole-keymap-{os.getpid()}")
    # pytest's process exports COLUMNS=80/LINES=24 at the C level (readline), which the
    # pane's first command would inherit and believe over the real 160x48: unset them.
    tmux.start(f"unset COLUMNS LINES; cd {shlex.quote(str(REPO))} && TERM=xterm-256color "
               f"XDG_CONFIG_HOME={shlex.quote(str(config_home))} {console}; "
               f"echo $? > {shlex.quote(str(exit_file))}; sleep 30")
    screen = Screen(tmux)
    try:
        _walk(tmux, screen, exit_file)
    except pytest.fail.Exception as exc:
        pytest.fail(f"{exc}; the last screen:\n{screen.last}")
    finally:
        tmux.kill()


def _walk(tmux: Tmux, screen: Screen, exit_file) -> None:
    wait_until(lambda: "unreachable" in screen.text() and "f1 Help" in screen.footer(), 30,
               "the panes (nats-1 unreachable) and `f1 Help` in the footer")
    assert "? Help" not in screen.footer()

    tmux.keys("?", "e")  # the old key, then one whose effect shows: ? has been handled
    wait_until(lambda: "esc Back" in screen.footer(), 10, "the event log after ? then e")
    assert HELP_TITLE not in screen.last, "? still opens the help screen"
    tmux.keys("Escape")
    wait_until(lambda: "esc Back" not in screen.footer() and "f1 Help" in screen.footer(), 10,
               "the panes again after Escape")

    tmux.keys("F1")
    wait_until(lambda: HELP_TITLE in screen.text(), 10, "the help screen after F1")
    rows = re.findall(r"(\S+) +Help +help +", screen.last)  # key · action · binding id
    assert rows == ["f1"], rows  # the help screen lists the key in effect, not `?`

    tmux.keys("Escape")
    wait_until(lambda: HELP_TITLE not in screen.text(), 10, "Escape to close the help")
    tmux.keys("q")
    wait_until(lambda: exit_file.exists() and exit_file.read_text().strip(), 15,
               "the console to exit after q")
    assert exit_file.read_text().strip() == "0"


def test_a_bad_keymap_is_one_line_and_the_console_never_starts(tmp_path) -> None:
    keymap = tmp_path / "keymap.toml"
    keymap.write_text('help = "f1"\nhepl = "f2"\n')
    out = run_cli("--config", _inventory(tmp_path), env={"OPSCONSOLE_KEYMAP": str(keymap)},
                  timeout=60)
    assert out.returncode == 2
    assert out.stdout == ""  # no terminal UI was drawn
    assert out.stderr.splitlines() == [
        f"opsconsole: {keymap}: hepl: unknown binding id; did you mean 'help'?"]
