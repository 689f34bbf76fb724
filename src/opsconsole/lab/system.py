"""The embedded lab's own contribution to the registry: the lab-only fault kinds
(process kill/restart/pause, fault-proxy link faults). Its inventory key ``[lab]`` is part
of every inventory (:class:`opsconsole.config.InventoryBase`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.system import System

if TYPE_CHECKING:
    from ..faults.kinds import FaultKind


class LabSystem(System):
    name = "lab"
    title = "Embedded lab (process and link faults)"
    order = 0

    def fault_kinds(self) -> Sequence[FaultKind]:
        from .faults import KINDS

        return KINDS


SYSTEM = LabSystem()
