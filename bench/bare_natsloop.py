"""The reference for NATS delivery: a bare nats-py publish/subscribe loop.

One publisher at a constant total rate (timestamp in the payload), ``--subscribers``
connections subscribed (like the harness's worker connections); latency = receive time -
send timestamp, recorded per message per subscriber in an HDR histogram. Prints one JSON
line: delivered msg/s (mean over subscribers) and p99.

usage: bare_natsloop.py URL RATE DURATION [--subscribers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import struct
import time

import nats
from hdrh.histogram import HdrHistogram

PAD = b"x" * 200  # about the size of a signed gossip op


async def main(url: str, rate: float, duration: float, subscribers: int) -> None:
    hist = HdrHistogram(1, 3_600_000_000, 3)
    counts = [0] * subscribers
    last_rx = [0.0]
    subs = [await nats.connect(url) for _ in range(subscribers)]
    pub = await nats.connect(url)
    subject = f"bench.bare.{time.monotonic_ns()}"
    for i, nc in enumerate(subs):
        async def on(msg, i: int = i) -> None:
            (sent,) = struct.unpack_from("!d", msg.data)
            hist.record_value(max(1, int((time.time() - sent) * 1e6)))
            counts[i] += 1
            last_rx[0] = time.monotonic()

        await nc.subscribe(subject, cb=on)
        await nc.flush()
        await nc.flush()  # nats-py: one flush can return before the SUB is registered
    loop = asyncio.get_running_loop()  # its clock is time.monotonic
    t0 = loop.time() + 0.05
    n = int(rate * duration)
    for k in range(n):
        due = t0 + k / rate
        delay = due - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        await pub.publish(subject, struct.pack("!d", time.time()) + PAD)
    await pub.flush()
    deadline = loop.time() + 10
    while min(counts) < n and loop.time() < deadline:
        await asyncio.sleep(0.05)
    elapsed = loop.time() - t0
    for nc in [*subs, pub]:
        await nc.close()
    window = max(duration, last_rx[0] - t0)
    print(json.dumps({"sent": n, "delivered": counts, "elapsed_s": elapsed,
                      "delivered_msgs": sum(counts) / subscribers / window,
                      "p99_ms": hist.get_value_at_percentile(99) / 1000,
                      "p95_ms": hist.get_value_at_percentile(95) / 1000}))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("rate", type=float)
    ap.add_argument("duration", type=float)
    ap.add_argument("--subscribers", type=int, default=2)
    a = ap.parse_args()
    asyncio.run(main(a.url, a.rate, a.duration, a.subscribers))
