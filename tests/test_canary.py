"""Relay canaries: the tracker's arithmetic, and real canaries across lab leaves."""

from __future__ import annotations

from opsconsole.core.bus import EventBus
from opsconsole.core.events import CanaryReport
from opsconsole.lab import Lab
from opsconsole.load.canary import GRACE_S, PathTracker, RelayCanary

from .conftest import async_wait_until


def test_tracker_counts_duplicates_reordering_and_settled_loss() -> None:
    t = PathTracker()
    for seq in range(6):
        t.on_sent(seq, 100.0 + seq * 0.1)
    for seq in (0, 2, 1, 2, 4):  # 1 reordered, 2 duplicated, 3 and 5 never arrive
        t.on_received(seq, 100.0 + seq * 0.1, 100.0 + seq * 0.1 + 0.002)
    assert (t.delivered, t.duplicated, t.reordered) == (4, 1, 1)
    t.settle(100.3 + GRACE_S)  # seqs 0..3 are old enough to judge; 4 and 5 are not
    assert (t.settled, t.lost) == (4, 1)
    t.settle(101.0 + GRACE_S)
    assert (t.settled, t.lost) == (6, 2)  # settled == delivered + lost
    assert 1.9 < t.percentile(0.5) < 2.1


async def test_canary_across_a_real_leaf_sees_no_loss_in_steady_state(
        lab: Lab, lab_status: dict) -> None:
    bus = EventBus()
    reports: list[CanaryReport] = []
    bus.subscribe(lambda e: reports.append(e) if isinstance(e, CanaryReport) else None)
    leaf = lab_status["leaves"][1]
    canary = RelayCanary(bus, leaf["name"], leaf["user"], lab_status["nats"][0]["client_url"],
                         leaf["client_url"], rate=50)
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
