"""The agent mesh: the ``mesh`` pack (presence, CRDTs, rendezvous, security, scale)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...core.system import System

if TYPE_CHECKING:
    from ...scenarios.engine import Scenario


class MeshSystem(System):
    name = "mesh"
    title = "Agent mesh"
    order = 70

    def packs(self) -> Mapping[str, Sequence[type[Scenario]]]:
        from .packs.mesh import SCENARIOS

        return {"mesh": SCENARIOS}


SYSTEM = MeshSystem()
