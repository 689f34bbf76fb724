"""Fault kinds: what each injects, which targets it accepts, and how it heals.

``inject`` returns a JSON-able ``heal`` spec; ``heal`` must work from that spec
alone, in a fresh process, after the injecting one crashed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import aiohttp

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


class FaultKind:
    id: ClassVar[str]
    title: ClassVar[str]
    destructive: ClassVar[bool] = False  # the TUI asks before injecting
    one_shot: ClassVar[bool] = False  # an action, not a condition: nothing to heal
    defaults: ClassVar[dict[str, Any]] = {}
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




class _Registry(dict[str, FaultKind]):
    """Every registered system's fault kinds by id, assembled on first use."""

    def _fill(self) -> None:
        if not self._filled:
            from ..core.system import systems

            self._filled = True
            for system in systems():
                for kind in system.fault_kinds():
                    super().setdefault(kind.id, kind)

    _filled = False

    def reset(self) -> None:
        self.clear()
        self._filled = False

    def __getitem__(self, key: str) -> FaultKind:
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


REGISTRY: _Registry = _Registry()


def _reset_registry() -> None:
    REGISTRY.reset()


def _hook() -> None:
    from ..core.system import on_reset

    on_reset(_reset_registry)


_hook()
