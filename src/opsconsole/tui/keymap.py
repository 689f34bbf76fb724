"""The user's keymap: ``binding-id = "key[,key…]"`` in keymap.toml, applied with
``App.set_keymap`` (Textual swaps the keys of the bindings with those ids everywhere, the
footer included).

Everything Textual would silently ignore or drop is refused here instead, one line each:
an unknown binding id, a value that is not a key string, a key name Textual does not know,
and two bindings of one screen on the same key.
"""

from __future__ import annotations

import difflib
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from textual.binding import Binding, BindingType
from textual.keys import (
    KEY_ALIASES,
    KEY_NAME_REPLACEMENTS,
    Keys,
    _normalize_key_list,  # what App.set_keymap applies: compare keys the way it will
    key_to_character,
)

from ..errors import UserError
from ..settings import settings

MODIFIERS = frozenset({"ctrl", "shift", "alt", "meta", "super", "hyper"})
#: key names Textual emits that are not a single character ("f1", "escape", "pageup", …)
_NAMED_KEYS = (
    {k.value.rpartition("+")[2] for k in Keys if not k.value.startswith("<")}
    | set(KEY_NAME_REPLACEMENTS.values()) | set(KEY_ALIASES)
    | {alias for aliases in KEY_ALIASES.values() for alias in aliases}
)
_TOML_TYPES = {bool: "a boolean", int: "an integer", float: "a number", list: "an array",
               dict: "a table"}


class KeymapError(UserError):
    """The keymap file is unusable: the console is not started (exit 2)."""


@dataclass(frozen=True)
class Keymap:
    """Binding id → key string (Textual's long names, comma-separated), from ``path``."""

    path: Path | None = None
    keys: Mapping[str, str] = field(default_factory=dict)

    def keys_of(self, binding: Binding) -> list[str]:
        """The keys that trigger ``binding`` once the keymap is applied."""
        raw = self.keys.get(binding.id or "", binding.key)
        return [k.strip() for k in raw.split(",") if k.strip()]

    def effective(self, binding: Binding) -> list[Binding]:
        """``binding`` once per effective key, as Textual's keymap rewrites it."""
        if binding.id in self.keys:
            return [binding.with_key(key=k, key_display=None) for k in self.keys_of(binding)]
        return [binding.with_key(key=k) for k in self.keys_of(binding)]


def screen_owners() -> list[tuple[str, list[BindingType]]]:
    """The secondary screens' remappable bindings: (the screen, its BINDINGS)."""
    from .screens import ConfirmScreen, EventLogScreen, HelpScreen, OptionsScreen, PickScreen

    return [("event log", EventLogScreen.BINDINGS), ("help", HelpScreen.BINDINGS),
            ("confirm", ConfirmScreen.BINDINGS), ("pickers", PickScreen.BINDINGS),
            ("options", OptionsScreen.BINDINGS)]


def owners() -> list[tuple[str, list[BindingType]]]:
    """Every set of remappable bindings; the console's includes the demo's ``n``."""
    from .demo_app import DemoApp

    return [("console", DemoApp.BINDINGS), *screen_owners()]


def bindings(group: list[BindingType]) -> Iterator[Binding]:
    for b in group:
        if isinstance(b, Binding) and b.id:
            yield b


def binding_ids() -> list[str]:
    return [b.id for _, group in owners() for b in bindings(group) if b.id]


def is_key(name: str) -> bool:
    """A key string Textual can deliver: modifiers, then one character or a key name."""
    *mods, base = name.split("+")
    if not base or any(m not in MODIFIERS for m in mods):
        return False
    return len(base) == 1 or base in _NAMED_KEYS or key_to_character(base) is not None


def _flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``pane.health = "h"`` is a dotted TOML key (a nested table): rejoin the dots."""
    for name, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


def _check_value(where: str, value: Any) -> str:
    if not isinstance(value, str):
        kind = _TOML_TYPES.get(type(value), "a date or time")
        raise KeymapError(f'{where}: must be a key string such as "f1" or "ctrl+h,f1", '
                          f"not {kind}")
    keys = _normalize_key_list(value)
    names = keys.split(",")
    if not value.strip() or not all(names):
        raise KeymapError(f"{where}: {value!r} names no key (keys are comma-separated)")
    for name in names:
        if not is_key(name):
            hint = f"; did you mean {name.lower()!r}?" if is_key(name.lower()) else (
                " (e.g. f1, ctrl+x, question_mark)")
            raise KeymapError(f"{where}: {name!r} is not a key name Textual knows{hint}")
    return keys


def _check_clashes(label: str, keys: Mapping[str, str]) -> None:
    """Two bindings of one screen on one key: Textual would silently drop one."""
    keymap = Keymap(keys=keys)
    for _, group in owners():
        holder: dict[str, str] = {}
        for b in bindings(group):
            for key in keymap.keys_of(b):
                other = holder.setdefault(_normalize_key_list(key), b.id or "")
                if other != b.id:
                    moved, kept = (b.id, other) if b.id in keys else (other, b.id)
                    raise KeymapError(f"{label}: {moved}: {key} is already the key of "
                                      f"{kept}; give {kept} another key too")


def load_keymap(path: Path | None = None) -> Keymap:
    """The keymap at ``path`` (default: settings' keymap_file); a missing file: no changes."""
    path = path if path is not None else settings().keymap_file
    label = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Keymap(path=path)
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise KeymapError(f"{label}: cannot read the keymap: {why}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        hint = ' (quote binding ids with a dot: "help.close" = …)' if (
            "overwrite" in str(exc)) else ""
        raise KeymapError(f"{label}: not valid TOML: {exc}{hint}") from None
    known = binding_ids()
    keys: dict[str, str] = {}
    for binding_id, value in _flatten(raw):
        where = f"{label}: {binding_id}"
        if binding_id not in known:
            close = difflib.get_close_matches(binding_id, known, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(known)}"
            raise KeymapError(f"{where}: unknown binding id; {hint}")
        keys[binding_id] = _check_value(where, value)
    _check_clashes(label, keys)
    return Keymap(path=path, keys=keys)
