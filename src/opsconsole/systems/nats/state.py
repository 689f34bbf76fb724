"""The NATS slice of the console state: central nodes, leaves and their relay canaries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ...core.state import Counter
from ...core.system import Slice
from .events import CanaryReport, LeafSampled, NatsNodeSampled

if TYPE_CHECKING:
    from ...core.state import State


@dataclass
class NatsView:
    sample: NatsNodeSampled
    msgs_in: Counter = field(default_factory=Counter)
    msgs_out: Counter = field(default_factory=Counter)


@dataclass
class LeafView:
    sample: LeafSampled
    to_local: Counter = field(default_factory=Counter)
    to_central: Counter = field(default_factory=Counter)
    # Filled by relay canaries; None (no canary yet) renders as "—", never as 0.
    canary: dict[str, CanaryReport] = field(default_factory=dict)  # by path: c2l, l2c

    @property
    def lost(self) -> int | None:
        return sum(c.lost for c in self.canary.values()) if self.canary else None

    @property
    def duplicated(self) -> int | None:
        return sum(c.duplicated for c in self.canary.values()) if self.canary else None


@dataclass
class NatsSlice(Slice):
    """``state.nats``: central nodes by name and leaves by name."""

    nodes: dict[str, NatsView] = field(default_factory=dict)
    leaves: dict[str, LeafView] = field(default_factory=dict)

    def on_node(self, state: State, ev: NatsNodeSampled) -> None:
        view = self.nodes.get(ev.name)
        if view is None:
            view = self.nodes[ev.name] = NatsView(ev)
        else:
            state.transition(ev.ts, f"NATS {ev.name}", view.sample.reachable,
                             view.sample.healthy, ev.reachable, ev.healthy, ev.reason)
            view.sample = ev
        if ev.reachable:
            view.msgs_in.feed(ev.ts, ev.in_msgs)
            view.msgs_out.feed(ev.ts, ev.out_msgs)

    def on_leaf(self, state: State, ev: LeafSampled) -> None:
        view = self.leaves.get(ev.name)
        if view is None:
            view = self.leaves[ev.name] = LeafView(ev)
        else:
            old = view.sample
            state.transition(ev.ts, f"leaf {ev.name}", old.reachable, old.healthy,
                             ev.reachable, ev.healthy, ev.reason)
            if ev.hub and old.hub and ev.hub != old.hub:
                state.note(ev.ts, f"leaf {ev.name} moved hub {old.hub} → {ev.hub}", "warn")
            view.sample = ev
        if ev.reachable:
            view.to_local.feed(ev.ts, ev.to_local_msgs)
            view.to_central.feed(ev.ts, ev.to_central_msgs)

    def on_canary(self, state: State, ev: CanaryReport) -> None:
        view = self.leaves.get(ev.leaf)
        if view is None:
            return
        old = view.canary.get(ev.path)
        if old is not None and ev.lost > old.lost:
            state.note(ev.ts, f"canary {ev.leaf} {ev.path}: {ev.lost - old.lost} lost", "warn")
        view.canary[ev.path] = ev



NatsSlice.handlers = {NatsNodeSampled: NatsSlice.on_node, LeafSampled: NatsSlice.on_leaf,
                      CanaryReport: NatsSlice.on_canary}
