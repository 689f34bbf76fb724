"""Command palette provider: every scenario and fault, plus the console's own actions."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .. import catalog


class ConsoleCommands(Provider):
    def _commands(self) -> list[tuple[str, str, object]]:
        app = self.app
        cmds: list[tuple[str, str, object]] = [
            (f"scenario: {e.id}", e.title, partial(app.launch_scenario, e.id))  # type: ignore[attr-defined]
            for e in catalog.scenarios()]
        cmds += [(f"fault: {e.id}", e.title, partial(app.launch_fault, e.id))  # type: ignore[attr-defined]
                 for e in catalog.faults()]
        cmds += [
            ("Heal all faults", "heal every active fault", app.action_heal_all),  # type: ignore[attr-defined]
            ("Event log", "timeline of state changes", app.action_event_log),  # type: ignore[attr-defined]
        ]
        return cmds

    async def discover(self) -> Hits:
        for name, help_text, callback in self._commands():
            yield DiscoveryHit(name, callback, help=help_text)  # type: ignore[arg-type]

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self._commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), callback,  # type: ignore[arg-type]
                          help=help_text)
