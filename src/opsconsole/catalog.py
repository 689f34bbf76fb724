"""The catalogue of scenarios and faults the console can launch (TUI-free).

Assembled from the registered systems' packs and fault kinds each time it is read, so a
plugin's entries appear (and a removed plugin's disappear) without any list to edit. The
TUI's `s` / `f` screens and command palette list whatever is here; an empty list is shown
as such, never faked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class CatalogEntry:
    id: str
    kind: Literal["scenario", "fault"]
    title: str
    description: str = ""
    destructive: bool = False


def scenarios() -> list[CatalogEntry]:
    from .scenarios import PACKS

    entries = {cls.id: CatalogEntry(cls.id, "scenario", cls.title, cls.description)
               for pack in PACKS.values() for cls in pack}
    return sorted(entries.values(), key=lambda e: e.id)


def faults() -> list[CatalogEntry]:
    from .faults.kinds import REGISTRY

    return sorted((CatalogEntry(k.id, "fault", k.title, destructive=k.destructive)
                   for k in REGISTRY.values()), key=lambda e: e.id)
