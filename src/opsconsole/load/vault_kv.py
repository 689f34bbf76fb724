"""Vault KV v2 operations for the load generator: reads and writes over async HTTP.

A fixed key set is seeded first, so reads always hit existing secrets; writes
overwrite the same keys (new versions) so the run leaves a bounded footprint, removed
by :meth:`VaultKvLoad.cleanup`. One aiohttp session with one connection per user.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from urllib.parse import urlsplit

import aiohttp

from .fasthttp import FastHttp


class VaultKvLoad:
    def __init__(self, addr: str, token: str, *, users: int, keys: int = 100,
                 timeout_s: float = 10.0) -> None:
        self.addr = addr.rstrip("/")
        self.keys = keys
        self.prefix = f"opsconsole/load-{uuid.uuid4().hex[:8]}"
        self._headers = {"X-Vault-Token": token}
        self._write_headers = {**self._headers, "Content-Type": "application/json"}
        self._body = json.dumps({"data": {"v": uuid.uuid4().hex}}).encode()
        self._urls = [f"{self.addr}/v1/secret/data/{self.prefix}/k{n}" for n in range(keys)]
        self.users = users
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None  # seeding and cleanup
        self._fast: FastHttp | None = None  # the load itself

    async def __aenter__(self) -> VaultKvLoad:
        connector = aiohttp.TCPConnector(limit=8, keepalive_timeout=60)
        self._http = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        self._fast = FastHttp(self.addr, self.users, self._timeout.total or 10.0)
        paths = [urlsplit(u).path for u in self._urls]
        self._reads = [self._fast.encode("GET", p, self._headers) for p in paths]
        self._writes = [self._fast.encode("POST", p, self._write_headers, self._body)
                        for p in paths]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
        if self._fast is not None:
            await self._fast.close()

    async def seed(self) -> None:
        """Write every key once (so reads find them); raise on the first failure."""
        sem = asyncio.Semaphore(8)

        async def one(i: int) -> None:
            async with sem:
                if not await self._aiohttp_write(i):
                    raise RuntimeError(f"seeding {self.prefix}/k{i} failed")

        await asyncio.gather(*(one(i) for i in range(self.keys)))

    async def op(self, kind: str, i: int) -> bool:
        """One request on the lean client (the generator's hot path)."""
        assert self._fast is not None
        if kind == "write":
            return await self._fast.request(self._writes[i % self.keys]) in (200, 204)
        return await self._fast.request(self._reads[i % self.keys]) == 200

    async def _aiohttp_write(self, i: int) -> bool:
        assert self._http is not None
        async with self._http.post(self._urls[i % self.keys], data=self._body,
                                   headers=self._write_headers) as r:
            await r.read()
            return r.status in (200, 204)

    async def cleanup(self) -> None:
        assert self._http is not None
        sem = asyncio.Semaphore(8)

        async def one(n: int) -> None:
            async with sem, self._http.delete(  # type: ignore[union-attr]
                    f"{self.addr}/v1/secret/metadata/{self.prefix}/k{n}",
                    headers=self._headers) as r:
                await r.read()

        await asyncio.gather(*(one(n) for n in range(self.keys)), return_exceptions=True)
