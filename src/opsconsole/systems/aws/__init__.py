"""AWS: the account and region of the EC2 fleet, and the EC2 fault kinds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...core.system import ConfigSection, System
from .config import AwsTarget

if TYPE_CHECKING:
    from ...faults.kinds import FaultKind


class AwsSystem(System):
    name = "aws"
    title = "AWS (EC2)"
    order = 30

    def config_sections(self) -> Mapping[str, ConfigSection]:
        return {"aws": ConfigSection(AwsTarget | None, None, "[aws]", is_target=True,
                                     lab_supplied=True)}

    def fault_kinds(self) -> Sequence[FaultKind]:
        from .faults import KINDS

        return KINDS


SYSTEM = AwsSystem()
