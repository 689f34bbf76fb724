"""Relay canaries: the tracker's arithmetic (delivered, duplicated, reordered, lost)."""

from __future__ import annotations

from opsconsole.systems.nats.canary import GRACE_S, PathTracker


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


