"""The reference "bare" generator: aiohttp, one task per request at a constant rate,
latency from the intended send time. Prints one JSON line. Used by vault_load_compare.py.

usage: bare_openloop.py ADDR PREFIX RATE DURATION   (token in BENCH_VAULT_TOKEN)
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time

import aiohttp
from hdrh.histogram import HdrHistogram


async def main(addr: str, prefix: str, rate: float, duration: float) -> None:
    token = os.environ["BENCH_VAULT_TOKEN"]
    hist = HdrHistogram(1, 3_600_000_000, 3)
    ok = errors = 0
    body = json.dumps({"data": {"v": "x" * 32}}).encode()
    headers = {"X-Vault-Token": token, "Content-Type": "application/json"}
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as http:
        async def one(i: int, intended: float) -> None:
            nonlocal ok, errors
            url = f"{addr}/v1/secret/data/{prefix}/k{i % 100}"
            try:
                if i % 10 == 9:
                    async with http.post(url, data=body, headers=headers) as r:
                        await r.read()
                        good = r.status in (200, 204)
                else:
                    async with http.get(url, headers=headers) as r:
                        await r.read()
                        good = r.status == 200
            except aiohttp.ClientError:
                good = False
            hist.record_value(max(1, int((loop.time() - intended) * 1e6)))
            ok, errors = ok + good, errors + (not good)

        t0 = loop.time() + 0.05
        n = int(rate * duration)
        tasks = []
        cpu0 = time.process_time()
        for i in range(n):
            intended = t0 + i / rate
            delay = intended - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, intended)))
        await asyncio.gather(*tasks)
        elapsed = loop.time() - t0
    print(json.dumps({"ok": ok, "errors": errors, "elapsed_s": elapsed,
                      "p99_ms": hist.get_value_at_percentile(99) / 1000,
                      "cpu_s": time.process_time() - cpu0}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])))
