"""The vault-instance slice of the console state: each instance's last sample."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...core.system import Slice
from .events import InstanceSampled

if TYPE_CHECKING:
    from ...core.state import State


@dataclass
class InstancesSlice(Slice):
    """``state.vault_instances``: instances by id."""

    instances: dict[str, InstanceSampled] = field(default_factory=dict)

    def on_instance(self, state: State, ev: InstanceSampled) -> None:
        old = self.instances.get(ev.instance_id)
        if old is None or old.state != ev.state:
            state.note(ev.ts, f"instance {ev.instance_id} ({ev.owner}) {ev.state}")
        self.instances[ev.instance_id] = ev



InstancesSlice.handlers = {InstanceSampled: InstancesSlice.on_instance}
