"""Vault KV v2 operations for the load generator: reads and writes over async HTTP.

A fixed key set is seeded first, so reads always hit existing secrets; writes
overwrite the same keys (new versions) so the run leaves a bounded footprint, removed
by :meth:`VaultKvLoad.cleanup`. Every request goes through :class:`FastHttp`, one
keep-alive connection per user.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import urlsplit

from ...load.fasthttp import FastHttp
from ...targets.tls import TlsClient

SETUP_CONCURRENCY = 8  # seeding and cleanup: a handful at a time, not a load


class VaultKvLoad:
    def __init__(self, addr: str, token: str, *, users: int, keys: int = 100,
                 timeout_s: float = 10.0, tls: dict[str, Any] | None = None,
                 namespace: str | None = None) -> None:
        self.addr = addr.rstrip("/")
        self.keys = keys
        self.users = users
        self.prefix = f"opsconsole/load-{uuid.uuid4().hex[:8]}"
        base = urlsplit(self.addr).path
        headers = {"X-Vault-Token": token, **({"X-Vault-Namespace": namespace}
                                              if namespace else {})}
        body = json.dumps({"data": {"v": uuid.uuid4().hex}}).encode()
        # tls: the cluster's TlsClient keys (the worker is another process: paths, not a context)
        ssl = TlsClient(**tls).ssl_context("vault") if tls else None
        self._fast = FastHttp(self.addr, users, timeout_s, ssl)
        data = [f"{base}/v1/secret/data/{self.prefix}/k{n}" for n in range(keys)]
        self._reads = [self._fast.encode("GET", p, headers) for p in data]
        self._writes = [self._fast.encode("POST", p, {**headers, "Content-Type":
                                                      "application/json"}, body) for p in data]
        self._deletes = [self._fast.encode("DELETE", f"{base}/v1/secret/metadata/{self.prefix}"
                                           f"/k{n}", headers) for n in range(keys)]

    async def __aenter__(self) -> VaultKvLoad:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._fast.close()

    async def op(self, kind: str, i: int) -> bool:
        """One request (the generator's hot path)."""
        if kind == "write":
            return await self._fast.request(self._writes[i % self.keys]) in (200, 204)
        return await self._fast.request(self._reads[i % self.keys]) == 200

    async def seed(self) -> None:
        """Write every key once (so reads find them); raise on the first failure."""
        sem = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def one(i: int) -> None:
            async with sem:
                if not await self.op("write", i):
                    raise RuntimeError(f"seeding {self.prefix}/k{i} failed")

        await asyncio.gather(*(one(i) for i in range(self.keys)))

    async def cleanup(self) -> None:
        """Delete every key with its versions; best effort (the run's result stands)."""
        sem = asyncio.Semaphore(SETUP_CONCURRENCY)

        async def one(n: int) -> None:
            async with sem:
                await self._fast.request(self._deletes[n])

        await asyncio.gather(*(one(n) for n in range(self.keys)), return_exceptions=True)


def kv_load_options(cluster: Any) -> dict[str, Any]:
    """The :class:`VaultKvLoad` options for ``cluster`` (a ``VaultCluster``): its TLS keys
    (as strings: they cross to the worker process) and namespace."""
    if cluster is None:
        return {}
    tls = {k: (str(v) if v is not None and not isinstance(v, bool) else v)
           for k, v in cluster.model_dump(include=set(TlsClient.model_fields)).items()}
    return {"tls": tls if cluster.tls_configured else None, "namespace": cluster.namespace}
