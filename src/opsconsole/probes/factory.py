"""Build the probe set for an inventory: every registered system's probes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp

from ..core.system import ProbeContext, systems
from .base import Probe

if TYPE_CHECKING:
    from ..config import InventoryBase


def build_probes(inv: InventoryBase, session: aiohttp.ClientSession,
                 aws_credentials: dict[str, str] | None = None,
                 canaries: bool = False) -> list[Probe]:
    ctx = ProbeContext(inv, session, aws_credentials, canaries)
    return [probe for system in systems() for probe in system.probes(ctx)]
