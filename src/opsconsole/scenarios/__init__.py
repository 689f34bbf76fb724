"""Scenarios grouped in packs; ids are ``pack.scenario``."""

from __future__ import annotations

from typing import Any

from .. import catalog
from ..errors import UserError
from .engine import Check, Run, Scenario, ScenarioResult, run_scenario
from .packs import lab as lab_pack
from .packs import mesh, sessions, smoke, smoke_flow, smoke_host, vault_ha, vault_instance

PACKS: dict[str, list[type[Scenario]]] = {"lab": lab_pack.SCENARIOS,
                                          "vault-instance": vault_instance.SCENARIOS,
                                          "vault-ha": vault_ha.SCENARIOS,
                                          "sessions": sessions.SCENARIOS,
                                          "mesh": mesh.SCENARIOS,
                                          "smoke": [*smoke.SCENARIOS_1_4,
                                                    *smoke_flow.SCENARIOS_5_7,
                                                    *smoke_host.SCENARIOS_8_9]}


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
        raise UserError(f"unknown scenario or pack {selector!r} (packs: {known}; "
                        "`opsconsole scenarios list` shows every id)", exit_code=2)
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
