"""Scenarios grouped in packs; ids are ``pack.scenario``."""

from __future__ import annotations

from .. import catalog
from ..errors import UserError
from .engine import Check, Run, Scenario, ScenarioResult, run_scenario
from .packs import lab as lab_pack
from .packs import vault_ha, vault_instance

PACKS: dict[str, list[type[Scenario]]] = {"lab": lab_pack.SCENARIOS,
                                          "vault-instance": vault_instance.SCENARIOS,
                                          "vault-ha": vault_ha.SCENARIOS}


def all_scenarios() -> list[Scenario]:
    return [cls() for pack in PACKS.values() for cls in pack]


def resolve(selector: str) -> list[Scenario]:
    """``pack`` → every scenario in it; ``pack.name`` → that one. Exit 2 if unknown."""
    if selector in PACKS:
        return [cls() for cls in PACKS[selector]]
    for scenario in all_scenarios():
        if scenario.id == selector:
            return [scenario]
    known = ", ".join(sorted(PACKS))
    raise UserError(f"unknown scenario or pack {selector!r} (packs: {known}; "
                    "`opsconsole scenarios list` shows every id)", exit_code=2)


def _register_catalog() -> None:
    from ..faults.kinds import REGISTRY

    for scenario in all_scenarios():
        catalog.register(catalog.CatalogEntry(scenario.id, "scenario", scenario.title))
    for kind in REGISTRY.values():
        catalog.register(catalog.CatalogEntry(kind.id, "fault", kind.title,
                                              destructive=kind.destructive))


_register_catalog()

__all__ = ["PACKS", "Check", "Run", "Scenario", "ScenarioResult", "all_scenarios", "resolve",
           "run_scenario"]
