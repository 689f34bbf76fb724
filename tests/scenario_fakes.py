"""A scenario with options, shared by the options tests (CLI and console)."""

from __future__ import annotations

from pydantic import PositiveInt

from opsconsole.scenarios.engine import Run, Scenario, ScenarioOptions, option, outcome

#: (count, verbose) of every run of :class:`Counting`
SEEN: list[tuple[int, bool]] = []


class CountOptions(ScenarioOptions):
    count: PositiveInt = option(3, "how many", "N")
    verbose: bool = option(False, "say more")


class Counting(Scenario):
    id, title = "unit.count", "counts"
    needs_lab = False
    Options = CountOptions
    options: CountOptions

    async def method(self, run: Run) -> None:
        SEEN.append((self.options.count, self.options.verbose))
        await run.record("counted", outcome(self.options.count > 0, count=self.options.count))
