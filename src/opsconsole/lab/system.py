"""The embedded lab's own contribution to the registry: the lab-only fault kinds
(process kill/restart/pause, fault-proxy link faults) and ``attach``, through which the
systems' lab faults reach a lab by its state directory. Its inventory key ``[lab]`` is part
of every inventory (:class:`opsconsole.config.InventoryBase`)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ..core.system import System

if TYPE_CHECKING:
    from ..faults.kinds import FaultKind
    from ..faults.lab_control import LabControl


class LabSystem(System):
    name = "lab"
    title = "Embedded lab (process and link faults)"
    order = 0

    def fault_kinds(self) -> Sequence[FaultKind]:
        from ..faults.lab_kinds import KINDS

        return KINDS

    def attach(self, state_dir: str | os.PathLike[str]) -> LabControl:
        """The lab in ``state_dir``: how heal specs reach it (see faults.lab_control)."""
        from . import Lab

        return Lab.attach(state_dir)


SYSTEM = LabSystem()
