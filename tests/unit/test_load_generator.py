"""The open-loop generator: constant rate, coordinated-omission-corrected latency, backlog."""

from __future__ import annotations

import asyncio
import time

from opsconsole.load.histogram import Latency
from opsconsole.load.openloop import LoadSpec, OpenLoop


async def test_constant_rate_sends_every_slot_on_time() -> None:
    async def op(kind: str, i: int) -> bool:
        await asyncio.sleep(0.001)
        return True

    started = time.monotonic()
    res = await OpenLoop(LoadSpec(rate=300, duration_s=2, users=8), op).run()
    assert res.ok == 600 and res.errors == 0 and res.unsent == 0
    assert time.monotonic() - started < 4
    assert abs(res.throughput_rps - 300) / 300 < 0.05, res.throughput_rps
    reads, writes = res.per_op["read"].ok, res.per_op["write"].ok
    assert reads + writes == 600 and 0.8 < reads / 600 < 0.97  # the 90/10 mix


async def test_a_stall_shows_as_backlog_not_as_a_lower_rate() -> None:
    """A 300 ms server stall at 200 req/s delays ~60 scheduled requests. Measured from the
    intended send time they all show it; measured from the actual send (what closed-loop
    tools report) only the few requests in flight do."""
    loop = asyncio.get_running_loop()
    stall_from: list[float] = []

    async def op(kind: str, i: int) -> bool:
        now = loop.time()
        if not stall_from and i == 200:
            stall_from.append(now)
        if stall_from and now < stall_from[0] + 0.3:
            await asyncio.sleep(stall_from[0] + 0.3 - now)  # every request waits out the stall
        return True

    res = await OpenLoop(LoadSpec(rate=200, duration_s=3, users=4), op).run()
    assert res.ok == 600 and res.unsent == 0

    def slow(lat: Latency) -> int:
        return sum(int(c) for upper, c in lat.buckets() if upper > 100)

    assert slow(res.corrected) >= 30, res.corrected.buckets()
    assert slow(res.service) <= 4, res.service.buckets()
    assert res.corrected.max_ms() >= 250
    assert res.corrected.percentile_ms(99) > 5 * max(res.service.percentile_ms(95), 1)


async def test_slots_never_sent_count_as_unsent_errors() -> None:
    async def op(kind: str, i: int) -> bool:
        await asyncio.sleep(1.5)
        return True

    res = await OpenLoop(LoadSpec(rate=100, duration_s=0.5, users=2, drain_s=0.2), op).run()
    assert res.ok == 2 and res.unsent == 48
    assert res.error_rate == 48 / 50
    assert res.throughput_rps < 0.1 * res.offered_rps


async def test_failed_requests_are_counted_per_operation() -> None:
    async def op(kind: str, i: int) -> bool:
        if kind == "write":
            raise ConnectionResetError("peer reset")
        return True

    res = await OpenLoop(LoadSpec(rate=200, duration_s=1, users=4,
                                  mix=(("read", 0.5), ("write", 0.5))), op).run()
    m = res.metrics()
    assert res.per_op["write"].errors > 0 and m["write_error_rate"] == 1.0
    assert m["read_error_rate"] == 0.0
    assert 0.3 < m["error_rate"] < 0.7


def test_histograms_merge_through_their_encoding() -> None:
    a, b = Latency(), Latency()
    for ms in (1, 2, 3):
        a.record_s(ms / 1000)
    b.record_s(0.5)
    merged = Latency()
    merged.add_encoded(a.encode())
    merged.add_encoded(b.encode())
    assert merged.count == 4 and 499 < merged.max_ms() < 501
    assert merged.ladder()["p50"] < 3.1
