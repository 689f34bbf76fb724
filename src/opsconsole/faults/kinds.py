"""Fault kinds: what each injects, which targets it accepts, and how it heals.

Each kind declares two models: ``Params`` (what an operator may set, with defaults) and
``Heal`` (the heal spec ``prepare`` returns). The fault manager validates the parameters
before anything happens and the heal spec before it is written to the ledger, and again
when the ledger is read to heal (after a crash, by another process): ``heal`` must work
from that spec alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp
from pydantic import BaseModel, ConfigDict

from ..core.system import AssembledDict
from ..errors import UserError

if TYPE_CHECKING:
    from ..config import Inventory
    from .lab_control import LabControl


class NothingApplied(UserError):
    """Injection failed before changing anything: there is nothing to heal."""


@dataclass
class FaultContext:
    """What fault kinds may touch: only targets named by this inventory (or its lab)."""

    inventory: Inventory
    http: aiohttp.ClientSession
    lab: LabControl | None = None
    aws_credentials: dict[str, str] | None = None

    def require_lab(self, what: str) -> LabControl:
        if self.lab is None:
            raise UserError(f"{what}: only available on the embedded lab", exit_code=2)
        return self.lab


class FaultParams(BaseModel):
    """A fault kind's parameters (none by default): subclass with typed fields and
    defaults; an unknown parameter is refused."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class HealSpec(BaseModel):
    """What a heal needs, recorded in the ledger at injection: subclass with the fields
    your ``prepare`` returns. The base accepts any fields (a kind without its own model
    gets no check)."""

    model_config = ConfigDict(extra="allow", frozen=True)


class StrictHealSpec(HealSpec):
    """A heal spec with exactly its declared fields (the built-in kinds')."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LabNodeHeal(StrictHealSpec):
    """A lab node, in the lab of this state directory."""

    lab_dir: str
    node: str


class FaultKind:
    id: ClassVar[str]
    title: ClassVar[str]
    destructive: ClassVar[bool] = False  # the TUI asks before injecting
    one_shot: ClassVar[bool] = False  # an action, not a condition: nothing to heal
    Params: ClassVar[type[FaultParams]] = FaultParams
    Heal: ClassVar[type[HealSpec]] = HealSpec
    #: targets are found live (e.g. an EC2 query) and checked by ``prepare``, not listed
    #: by ``targets``; the console offers ``state_targets`` instead
    live_targets: ClassVar[bool] = False
    #: parameters added when the operator confirmed the console's "are you sure?" dialog
    confirmed_params: ClassVar[dict[str, Any]] = {}

    def targets(self, ctx: FaultContext) -> list[str]:
        raise NotImplementedError

    def state_targets(self, ctx: FaultContext, state: Any) -> list[str]:
        """The targets to offer in the console: ``targets`` unless found live."""
        return self.targets(ctx)

    async def prepare(self, ctx: FaultContext, target: str,
                      params: dict[str, Any]) -> dict[str, Any]:
        """Validate and return the heal spec; no side effects (it is written to the
        ledger before ``inject`` runs, so a crash mid-injection is still healable)."""
        return {}

    async def inject(self, ctx: FaultContext, target: str, params: dict[str, Any],
                     heal: dict[str, Any]) -> None:
        raise NotImplementedError

    async def heal(self, ctx: FaultContext, spec: dict[str, Any]) -> str:
        return "nothing to heal"


def _fill_kinds(into: dict[str, FaultKind]) -> None:
    from ..core.system import systems

    for system in systems():
        for kind in system.fault_kinds():
            into.setdefault(kind.id, kind)


#: every registered system's fault kinds by id, assembled on first use
REGISTRY: dict[str, FaultKind] = AssembledDict(_fill_kinds)
