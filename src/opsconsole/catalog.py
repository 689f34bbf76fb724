"""The catalogue of scenarios and faults the console can launch (TUI-free).

Packs register entries here; the TUI's `s` / `f` screens and command palette
list whatever is registered. Nothing is registered until the scenario engine
and fault ledger exist: an empty list is shown as such, never faked.
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


_ENTRIES: dict[str, CatalogEntry] = {}


def register(entry: CatalogEntry) -> None:
    _ENTRIES[f"{entry.kind}:{entry.id}"] = entry


def scenarios() -> list[CatalogEntry]:
    return sorted((e for e in _ENTRIES.values() if e.kind == "scenario"), key=lambda e: e.id)


def faults() -> list[CatalogEntry]:
    return sorted((e for e in _ENTRIES.values() if e.kind == "fault"), key=lambda e: e.id)
