"""The vault-instance events (registered with the event vocabulary on import)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ...core.events import Event


@dataclass(frozen=True, kw_only=True)
class InstanceSampled(Event):
    """One vault instance: its EC2 record plus its own health when present."""

    kind: ClassVar[str] = "instance"
    instance_id: str
    owner: str
    state: str
    instance_type: str = ""
    arch: str = ""
    private_ip: str = ""
    local_nats: str = "—"
    central_link: str = "—"
    manager: str = "—"
    last_event: str = ""
