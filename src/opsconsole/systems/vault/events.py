"""The Vault events (registered with the event vocabulary on import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...core.events import Event


@dataclass(frozen=True, kw_only=True)
class VaultNodeSampled(Event):
    """One Vault/OpenBao node: sys/health plus its row in the raft configuration."""

    kind: ClassVar[str] = "vault.node"
    name: str
    reachable: bool
    reason: str = ""
    initialized: bool = False
    sealed: bool | None = None
    standby: bool | None = None
    version: str = ""
    leader: bool = False
    voter: bool = False
    autopilot_healthy: bool | None = None
    last_index: int | None = None
    lag: int | None = None


@dataclass(frozen=True, kw_only=True)
class AlertChanged(Event):
    """An alert rule changed state for one instance: pending, firing or resolved."""

    kind: ClassVar[str] = "alert"
    name: str
    instance: str
    state: str  # pending | firing | resolved
    value: float = 0.0
    severity: str = ""
    summary: str = ""
    since: float = 0.0
