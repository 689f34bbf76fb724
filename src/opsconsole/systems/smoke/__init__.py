"""Smoke validation: the hermetic ``smoke`` pack and its signed boot transcript."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...core.system import System

if TYPE_CHECKING:
    from ...scenarios.engine import Scenario


class SmokeSystem(System):
    name = "smoke"
    title = "Smoke validation"
    order = 80

    def packs(self) -> Mapping[str, Sequence[type[Scenario]]]:
        from .packs import smoke, smoke_flow, smoke_host

        return {"smoke": [*smoke.SCENARIOS_1_4, *smoke_flow.SCENARIOS_5_7,
                          *smoke_host.SCENARIOS_8_9]}


SYSTEM = SmokeSystem()
