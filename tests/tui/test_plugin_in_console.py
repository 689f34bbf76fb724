"""An installed plugin's scenario and fault appear in the console's palette and pickers;
a broken plugin is a notification naming its distribution, and the console still starts."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from opsconsole.core import system as registry
from opsconsole.tui.palette import ConsoleCommands
from tests.helpers import install_plugins, start_beacon
from tests.tui.fixtures import until


@pytest.fixture
def plugins_installed(tmp_path: Path) -> Iterator[Path]:
    site = install_plugins(tmp_path, "opsconsole-beacon", "opsconsole-broken")
    sys.path.insert(0, str(site))
    importlib.invalidate_caches()
    registry.reset()
    try:
        yield site
    finally:
        sys.path.remove(str(site))
        for name in [m for m in sys.modules if m.startswith("opsconsole_beacon")]:
            del sys.modules[name]
        importlib.invalidate_caches()
        registry.reset()


async def test_palette_and_fault_picker_list_the_plugin(plugins_installed, tmp_path,
                                                        monkeypatch) -> None:
    from opsconsole.config import inventory_model
    from opsconsole.session import ConsoleSession
    from opsconsole.tui.app import OpsConsoleApp
    from opsconsole.tui.screens import PickScreen

    monkeypatch.setenv("OPSCONSOLE_STATE_DIR", str(tmp_path / "state"))
    proc, url = start_beacon(tmp_path)
    try:
        inv = inventory_model()(name="plugin-pilot", beacon={"url": url})
        app = OpsConsoleApp(ConsoleSession(inv), show_clock=False)
        async with app.run_test(size=(160, 48)) as pilot:
            notes = [n.message for n in app._notifications]
            assert any(m.startswith("plugin opsconsole-broken (broken): ModuleNotFound")
                       for m in notes), notes
            commands = [name for name, _, _ in ConsoleCommands(app.screen)._commands()]
            assert "scenario: beacon.silence-detected" in commands
            assert "fault: beacon.silence" in commands

            await until(pilot, lambda: app.session.faults is not None, "the session", 15)
            await until(pilot, lambda: app.session.state.beacon.last is not None,
                        "the plugin's probe to sample the beacon", 15)
            assert app.session.state.beacon.last.status == 200

            app.action_faults()
            await until(pilot, lambda: isinstance(app.screen, PickScreen), "the fault picker")
            assert "beacon.silence" in [item for item, _ in app.screen.items]
            app.screen.dismiss("beacon.silence")
            await until(pilot, lambda: isinstance(app.screen, PickScreen)
                        and app.screen.items == [("beacon", "beacon")], "the target picker")
            app.screen.dismiss("beacon")
            await until(pilot, lambda: app.session.state.beacon.last is not None
                        and app.session.state.beacon.last.status == 503,
                        "the injected fault to silence the beacon", 15)
            app.action_heal_all()
            await until(pilot, lambda: app.session.state.beacon.last.status == 200
                        and not app.session.state.faults, "the heal", 15)
    finally:
        proc.kill()
        proc.wait()
