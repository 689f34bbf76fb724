"""keymap.toml: binding id → key(s), validated before the console starts; every console
binding has a unique id, and the README's table lists each one."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest
from textual.binding import Binding
from textual.dom import DOMNode

import opsconsole.tui
from opsconsole import cli
from opsconsole.tui.app import OpsConsoleApp
from opsconsole.tui.keymap import Keymap, KeymapError, binding_ids, is_key, load_keymap

from ..helpers import REPO

#: the ids the help screen has always shown; they are what users put in their keymap files
PROMISED = {"pane.health", "pane.relay", "pane.instances", "pane.histograms", "scenarios",
            "faults", "heal-all", "event-log", "help", "quit", "command_palette"}


def _keymap(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "keymap.toml"
    path.write_text(text)
    return path


def _refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(KeymapError) as caught:
        load_keymap(_keymap(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 2
    assert message.startswith(f"{tmp_path / 'keymap.toml'}: ")
    return message.removeprefix(f"{tmp_path / 'keymap.toml'}: ")


def test_every_console_binding_has_a_unique_id() -> None:
    found: dict[str, Binding] = {}
    for info in pkgutil.walk_packages(opsconsole.tui.__path__, "opsconsole.tui."):
        module = importlib.import_module(info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, DOMNode) and cls.__module__ == info.name:
                for b in cls.__dict__.get("BINDINGS", []):  # DemoApp reuses the console's
                    assert isinstance(b, Binding) and b.id, f"{cls.__name__}: {b} has no id"
                    assert found.setdefault(b.id, b) is b, f"{b.id} is used twice"
    assert sorted(found) == sorted(binding_ids())  # each class is one the keymap knows
    assert len(set(binding_ids())) == len(binding_ids())
    assert set(binding_ids()) >= PROMISED


def test_the_readme_lists_every_binding_id() -> None:
    readme = (REPO / "README.md").read_text()
    listed = set(re.findall(r"^\| `([a-z0-9_.-]+)` \|", readme, flags=re.M))
    assert listed == set(binding_ids())


def test_a_missing_file_keeps_every_default(tmp_path) -> None:
    keymap = load_keymap(tmp_path / "nowhere" / "keymap.toml")
    assert keymap.keys == {} and keymap.path == tmp_path / "nowhere" / "keymap.toml"


def test_the_default_file_is_under_xdg_config_home(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("OPSCONSOLE_KEYMAP", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "opsconsole").mkdir()
    (tmp_path / "opsconsole" / "keymap.toml").write_text('help = "f1"\n')
    assert load_keymap().keys == {"help": "f1"}


def test_keys_are_normalised_the_way_textual_names_them(tmp_path) -> None:
    keymap = load_keymap(_keymap(tmp_path, '\n'.join([
        'help = "f1"',
        '"help.close" = "escape, f1"',   # a quoted id with a dot
        'pane.health = "!"',              # a dotted key: TOML makes it a table, we rejoin it
        '[confirm]',
        'yes = "ctrl+y,Y"',
        'no = "?"',
    ])))
    assert keymap.keys == {"help": "f1", "help.close": "escape,f1",
                           "pane.health": "exclamation_mark", "confirm.yes": "ctrl+y,Y",
                           "confirm.no": "question_mark"}
    help_binding = next(b for b in OpsConsoleApp.BINDINGS
                        if isinstance(b, Binding) and b.id == "help")
    assert [b.key for b in keymap.effective(help_binding)] == ["f1"]
    assert Keymap().keys_of(help_binding) == ["question_mark"]


def test_swapping_two_keys_is_not_a_clash(tmp_path) -> None:
    keymap = load_keymap(_keymap(tmp_path, 'help = "s"\nscenarios = "S"\n'))
    assert keymap.keys == {"help": "s", "scenarios": "S"}


@pytest.mark.parametrize(("text", "message"), [
    ('hepl = "f1"', "hepl: unknown binding id; did you mean 'help'?"),
    ('zzz = "f1"', "zzz: unknown binding id; known: pane.health, "),
    ('pane.nope = "x"', "pane.nope: unknown binding id; did you mean 'pane."),
    ("help = 1", 'help: must be a key string such as "f1" or "ctrl+h,f1", not an integer'),
    ("help = true", 'help: must be a key string such as "f1" or "ctrl+h,f1", not a boolean'),
    ('help = ["f1"]', 'help: must be a key string such as "f1" or "ctrl+h,f1", not an array'),
    ("help = 2024-01-01", "help: must be a key string such as "),
    ('help = ""', "help: '' names no key (keys are comma-separated)"),
    ('help = "f1,"', "help: 'f1,' names no key (keys are comma-separated)"),
    ('help = "F1"', "help: 'F1' is not a key name Textual knows; did you mean 'f1'?"),
    ('help = "ctrl+escap"', "help: 'ctrl+escap' is not a key name Textual knows (e.g. f1,"),
    ('help = "cmd+h"', "help: 'cmd+h' is not a key name Textual knows"),
    ('help = "s"', "help: s is already the key of scenarios; give scenarios another key too"),
    ('"confirm.yes" = "n"', "confirm.yes: n is already the key of confirm.no; give "),
    ('help = "f1"\nhelp.close = "f2"\n', 'not valid TOML: Cannot overwrite a value (at line 2,'
                                         ' column 18) (quote binding ids with a dot: "help.'),
    ("help = \n", "not valid TOML: Invalid value (at line 1, column 8)"),
])
def test_a_bad_entry_is_one_line_naming_the_file_and_the_key(tmp_path, text, message) -> None:
    assert _refused(tmp_path, text).startswith(message)


def test_an_unreadable_file_is_one_line(tmp_path) -> None:
    (tmp_path / "keymap.toml").mkdir()
    with pytest.raises(KeymapError, match=r"keymap.toml: cannot read the keymap: Is a direc"):
        load_keymap(tmp_path / "keymap.toml")


@pytest.mark.parametrize("key", ["f1", "f24", "ctrl+h", "ctrl+shift+up", "question_mark",
                                 "H", "?", "space", "enter", "escape", "pageup", "minus",
                                 "alt+f4", "shift+tab", "comma"])
def test_keys_textual_delivers_are_accepted(key) -> None:
    assert is_key(key)


def test_the_cli_refuses_a_bad_keymap_before_starting_anything(tmp_path, monkeypatch,
                                                              capsys) -> None:
    path = _keymap(tmp_path, "help = 1\n")
    monkeypatch.setenv("OPSCONSOLE_KEYMAP", str(path))

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the console started despite a bad keymap")

    monkeypatch.setattr("opsconsole.session.ConsoleSession.__init__", started)
    monkeypatch.setattr(OpsConsoleApp, "run", started)
    assert cli.main([]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f'opsconsole: {path}: help: must be a key string such as "f1" or "ctrl+h,f1", '
        "not an integer"]
