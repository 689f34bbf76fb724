"""Scenarios grouped in packs; ids are ``pack.scenario``. The packs are assembled from the
registered systems (:mod:`opsconsole.core.system`): two systems may add to one pack."""

from __future__ import annotations

from typing import Any

from ..core import system as registry
from ..errors import UserError
from .engine import Check, Run, Scenario, ScenarioResult, run_scenario

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

    ``options`` (run flags such as ``rate``) go to the scenarios that accept them; an
    option no selected scenario accepts is a user error naming the flag.
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
    for name, value in (options or {}).items():
        takers = [s for s in found if name in s.OPTIONS]
        if not takers:
            users = [s.id for s in all_scenarios() if name in s.OPTIONS]
            flag = "--" + name.replace("_", "-")
            raise UserError(f"{flag} does not apply to {selector} (it applies to: "
                            f"{', '.join(users) or 'no scenario'})", exit_code=2)
        for scenario in takers:
            scenario.configure(**{name: value})
    return found


__all__ = ["PACKS", "Check", "Run", "Scenario", "ScenarioResult", "all_scenarios", "resolve",
           "run_scenario"]
