"""Scenarios grouped in packs; ids are ``pack.scenario``. The packs are assembled from the
registered systems (:mod:`opsconsole.core.system`): two systems may add to one pack."""

from __future__ import annotations

from typing import Any

from ..core import system as registry
from ..errors import UserError
from .engine import Check, Run, Scenario, ScenarioResult, run_scenario

#: packs renamed since an earlier release: the old name gets a one-line hint
RENAMED_PACKS = {"lab": "lab-faults"}


class _Packs(dict[str, list[type[Scenario]]]):
    """``{pack: [Scenario classes]}`` from every registered system, assembled on first use
    (tests may add a pack with ``monkeypatch.setitem``)."""

    _filled = False

    def _fill(self) -> None:
        if self._filled:
            return
        self._filled = True
        for system in registry.systems():
            for pack, classes in system.packs().items():
                super().setdefault(pack, []).extend(classes)

    def reset(self) -> None:
        self.clear()
        self._filled = False

    def __getitem__(self, key: str) -> list[type[Scenario]]:
        self._fill()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self._fill()
        return super().get(key, default)

    def keys(self):  # type: ignore[no-untyped-def]
        self._fill()
        return super().keys()

    def values(self):  # type: ignore[no-untyped-def]
        self._fill()
        return super().values()

    def items(self):  # type: ignore[no-untyped-def]
        self._fill()
        return super().items()


PACKS = _Packs()
registry.on_reset(PACKS.reset)


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
