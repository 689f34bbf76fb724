"""Scenarios grouped in packs; ids are ``pack.scenario``. The packs are assembled from the
registered systems (:mod:`opsconsole.core.system`): two systems may add to one pack."""

from __future__ import annotations

from typing import Any

from ..core import system as registry
from ..errors import UserError
from .engine import Check, Run, Scenario, ScenarioOptions, ScenarioResult, run_scenario
from .options import apply_options

#: packs renamed since an earlier release: the old name gets a one-line hint
RENAMED_PACKS = {"lab": "lab-faults"}


def _fill_packs(into: dict[str, list[type[Scenario]]]) -> None:
    for system in registry.systems():
        for pack, classes in system.packs().items():
            into.setdefault(pack, []).extend(classes)


#: ``{pack: [Scenario classes]}`` from every registered system, assembled on first use
PACKS: dict[str, list[type[Scenario]]] = registry.AssembledDict(_fill_packs)


def all_scenarios() -> list[Scenario]:
    return [cls() for pack in PACKS.values() for cls in pack]


def resolve(selector: str, options: dict[str, Any] | None = None) -> list[Scenario]:
    """``pack`` → every scenario in it; ``pack.name`` → that one. Exit 2 if unknown.

    ``options`` (run flags such as ``rate``, as text or typed) go to the scenarios whose
    options model takes them; an option none takes, or a value its model rejects, is a user
    error naming the flag (:func:`opsconsole.scenarios.options.apply_options`).
    """
    if selector in PACKS:
        found = [cls() for cls in PACKS[selector]]
    else:
        found = [s for s in all_scenarios() if s.id == selector]
    if not found:
        known = ", ".join(sorted(PACKS))
        pack = selector.split(".", 1)[0]
        hint = (f"; the pack {pack!r} is now {RENAMED_PACKS[pack]!r}"
                if pack in RENAMED_PACKS else "")
        raise UserError(f"unknown scenario or pack {selector!r} (packs: {known}; "
                        f"`opsconsole scenarios list` shows every id{hint})", exit_code=2)
    if options:
        apply_options(selector, found, options, all_scenarios())
    return found


__all__ = ["PACKS", "Check", "Run", "Scenario", "ScenarioOptions", "ScenarioResult",
           "all_scenarios", "resolve", "run_scenario"]
