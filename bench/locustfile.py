"""Locust side of the Vault load comparison: the same 90/10 KV mix as `vault-ha.load`.

Env: BENCH_VAULT_TOKEN, BENCH_PREFIX (keys k0..k99 already seeded), BENCH_USER_RPS (each
user's constant throughput). FastHttpUser, one process, users ramped by the runner.
"""

from __future__ import annotations

import itertools
import json
import os

from locust import FastHttpUser, constant_throughput, task

TOKEN = os.environ["BENCH_VAULT_TOKEN"]
PREFIX = os.environ["BENCH_PREFIX"]
KEYS = 100
BODY = json.dumps({"data": {"v": "x" * 32}})
_counter = itertools.count()


class VaultKvUser(FastHttpUser):
    wait_time = constant_throughput(float(os.environ.get("BENCH_USER_RPS", "10")))

    def _path(self) -> str:
        return f"/v1/secret/data/{PREFIX}/k{next(_counter) % KEYS}"

    @task(9)
    def read(self) -> None:
        self.client.get(self._path(), headers={"X-Vault-Token": TOKEN}, name="read")

    @task(1)
    def write(self) -> None:
        self.client.post(self._path(), data=BODY, name="write",
                         headers={"X-Vault-Token": TOKEN, "Content-Type": "application/json"})
