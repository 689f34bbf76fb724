"""Relay canaries across a real lab leaf: no loss in steady state."""

from __future__ import annotations

from opsconsole.core.bus import EventBus
from opsconsole.lab import Lab
from opsconsole.systems.nats.canary import GRACE_S, RelayCanary
from opsconsole.systems.nats.events import CanaryReport

from ..helpers import async_wait_until, lab_endpoints


async def test_canary_across_a_real_leaf_sees_no_loss_in_steady_state(
        lab: Lab, lab_status: dict) -> None:
    bus = EventBus()
    reports: list[CanaryReport] = []
    bus.subscribe(lambda e: reports.append(e) if isinstance(e, CanaryReport) else None)
    leaf = lab_status["leaves"][1]
    central, leaves = lab_endpoints(lab)
    canary = RelayCanary(bus, leaf["name"], leaf["user"], central[0], leaves[leaf["name"]],
                         rate=50)
    await canary.start()
    try:
        await async_wait_until(lambda: all(t.settled >= 50 for t in canary.paths.values()),
                               GRACE_S + 10, "50 settled canary messages each way")
    finally:
        await canary.stop()
    for path, t in canary.paths.items():
        assert t.lost == 0 and t.duplicated == 0, (path, t.lost, t.duplicated)
        assert t.percentile(0.99) is not None and t.percentile(0.99) < 1000
    assert {r.path for r in reports} == {"c2l", "l2c"}
