"""A keymap file moves bindings: the moved key works, the old one does nothing, and the
footer, the help screen and the dialogs show the keys in effect."""

from __future__ import annotations

from textual.command import CommandPalette
from textual.widgets import Button, DataTable, Label
from textual.widgets._footer import FooterKey

from opsconsole.tui.keymap import load_keymap
from opsconsole.tui.screens import ConfirmScreen, HelpScreen

from .fixtures import make_app, until


def _footer(app) -> dict[str, str]:
    return {k.description: k.key for k in app.screen.query(FooterKey)}


def _help_rows(app) -> dict[str, tuple[str, str]]:
    table = app.screen.query_one(DataTable)
    rows = [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]
    return {binding_id: (keys, action) for keys, action, binding_id in rows}


async def test_help_moved_to_f1(tmp_path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('help = "f1"\n"help.close" = "escape,f1"\nheal-all = "ctrl+h"\n')
    app = make_app(keymap=load_keymap(path))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "Help" in _footer(app), "the footer")
        assert _footer(app)["Help"] == "f1"
        assert _footer(app)["Heal all"] == "ctrl+h"
        await pilot.press("question_mark")  # the old key: nothing happens
        await pilot.press("e")  # a later key is handled, so ? has been
        await until(pilot, lambda: type(app.screen).__name__ == "EventLogScreen",
                    "the event log after ? then e")
        await pilot.press("escape")
        await until(pilot, lambda: app.screen is app.screen_stack[0], "the panes again")

        await pilot.press("f1")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen), "help after f1")
        rows = _help_rows(app)
        assert rows["help"] == ("f1", "Help")
        assert rows["heal-all"] == ("^h", "Heal all")
        assert rows["help.close"] == ("esc, f1", "Help: Close")
        assert rows["scenarios"] == ("s", "Scenarios")  # untouched bindings keep defaults
        assert rows["command_palette"] == ("^p", "Command palette")
        labels = [str(w.content) for w in app.screen.query(Label)]
        assert f"Keys — remap any binding by its id in {path}" in labels
        assert "esc, f1 closes this help." in labels
        await pilot.press("f1")
        await until(pilot, lambda: not isinstance(app.screen, HelpScreen), "f1 to close help")


async def test_palette_and_dialog_keys_move_too(tmp_path) -> None:
    path = tmp_path / "keymap.toml"
    path.write_text('command_palette = "f2"\n"confirm.yes" = "ctrl+y"\n')
    app = make_app(keymap=load_keymap(path))
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "palette" in _footer(app), "the palette in the footer")
        assert _footer(app)["palette"] == "f2"
        await pilot.press("f2")
        await until(pilot, lambda: CommandPalette.is_open(app), "the palette after f2")
        await pilot.press("escape")
        await until(pilot, lambda: not CommandPalette.is_open(app), "the palette to close")

        answers: list[bool | None] = []
        app.push_screen(ConfirmScreen("Really?"), answers.append)
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen)
                    and app.screen.query("#yes"), "the question")
        assert str(app.screen.query_one("#yes", Button).label) == "Yes (^y)"
        await pilot.press("y")  # no longer yes
        await pilot.press("ctrl+y")
        await until(pilot, lambda: answers == [True], "ctrl+y to answer yes")
