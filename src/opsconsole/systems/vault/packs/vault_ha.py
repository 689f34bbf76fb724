"""The `vault-ha` pack: health, failover, split-brain, backup/restore, audit.

Load lives in :mod:`.vault_ha_load`, metrics and alerts in :mod:`.vault_ha_alerts`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import aiohttp

from ....scenarios.engine import Abort, Outcome, Run, Scenario, outcome
from ..checks import (
    WRITES_STEADY_KEY,
    bao_in_namespace,
    leader_addr,
    vault_api,
    vault_one_leader,
    vault_request,
    vault_write_read,
)
from .lab_faults import VaultLeaderKill
from .vault_ha_alerts import MetricsAlerts
from .vault_ha_load import Load


def _nodes(run: Run) -> list[str]:
    assert run.inventory.vault is not None
    return [n.name for n in run.inventory.vault.nodes]


class Health(Scenario):
    id = "vault-ha.health"
    title = "every node reachable and unsealed, 3 voters, exactly one leader, roles known"
    needs_lab = False
    mutates = ()  # reads the probes' state only

    def steady_state(self):
        return [vault_one_leader()]

    async def method(self, run: Run) -> None:
        views = {n: run.state.vault.nodes.get(n) for n in _nodes(run)}
        await run.record("every node reachable and unsealed", outcome(
            all(v and v.reachable and v.sealed is False for v in views.values()),
            **{n: (v.reason or ("sealed" if v.sealed else "ok")) if v else "no sample"
               for n, v in views.items()}))
        voters = [n for n, v in views.items() if v and v.voter]
        await run.record("raft has 3 voters", outcome(len(voters) == 3, voters=voters))
        leaders = [n for n, v in views.items() if v and v.reachable and v.leader]
        await run.record("exactly one leader", outcome(len(leaders) == 1, leaders=leaders))
        roles = {n: ("leader" if v.leader else "standby") for n, v in views.items()
                 if v and v.reachable}
        await run.record("roles identified", outcome(
            len(roles) == len(views) and sorted(roles.values()).count("leader") == 1,
            roles=roles))


class Failover(VaultLeaderKill):
    id = "vault-ha.failover"
    title = "kill the leader: detect, new leader, first write; the node rejoins with the data"
    target_s = 5.0

    def plan(self):
        return [*super().plan(), f"failover and write unavailability under {self.target_s:g} s"]

    async def method(self, run: Run) -> None:
        await super().method(run)
        m = run.result.metrics
        took = max(m.get("failover_seconds", 1e9), m.get("write_unavailable_seconds", 1e9))
        await run.record(f"failover under {self.target_s:g} s", outcome(
            took < self.target_s, failover_seconds=m.get("failover_seconds"),
            write_unavailable_seconds=m.get("write_unavailable_seconds")))


class BackupRestore(Scenario):
    id = "vault-ha.backup-restore"
    title = "write secrets, raft snapshot, delete them, restore, every secret back"
    count = 20
    mutates = (WRITES_STEADY_KEY, f"write {count} KV secrets under secret/opsconsole/backup-*",
               "delete them", "restore a raft snapshot (rewrites the whole cluster's data)")

    def steady_state(self):
        return [vault_one_leader(), vault_write_read()]

    def plan(self):
        return [f"write {self.count} secrets", "take a raft snapshot", "delete them",
                "restore the snapshot", "read every secret back"]

    async def method(self, run: Run) -> None:
        addr = leader_addr(run)
        if addr is None:
            raise Abort("no leader")
        tag = uuid.uuid4().hex[:8]
        values = {f"opsconsole/backup-{tag}/k{i}": uuid.uuid4().hex for i in range(self.count)}
        t = time.monotonic()
        for path, value in values.items():
            status, _ = await vault_request(run, addr, "POST", f"secret/data/{path}",
                                            {"data": {"v": value}})
            if status != 200:
                raise Abort(f"write {path}: HTTP {status}")
        run.metric("write_seconds", time.monotonic() - t)

        t = time.monotonic()
        snapshot = await _snapshot(run, addr)
        run.metric("snapshot_seconds", time.monotonic() - t)
        run.metric("snapshot_bytes", len(snapshot))

        t = time.monotonic()
        for path in values:
            await vault_request(run, addr, "DELETE", f"secret/metadata/{path}")
        gone = [p for p in values
                if (await vault_request(run, addr, "GET", f"secret/data/{p}"))[0] != 404]
        run.metric("delete_seconds", time.monotonic() - t)
        await run.record("secrets deleted before the restore",
                      outcome(not gone, still_present=len(gone)))

        t = time.monotonic()
        await _restore(run, addr, snapshot)
        run.metric("restore_seconds", time.monotonic() - t)

        t = time.monotonic()

        async def all_back(_: Run) -> Outcome:
            target = leader_addr(run) or addr
            missing = []
            for path, value in values.items():
                _, data = await vault_request(run, target, "GET", f"secret/data/{path}")
                if data.get("data", {}).get("data", {}).get("v") != value:
                    missing.append(path)
            return outcome(not missing, restored=len(values) - len(missing),
                            total=len(values))

        await run.expect("every secret came back after the restore", all_back, within=60)
        run.metric("verify_seconds", time.monotonic() - t)


async def _snapshot(run: Run, addr: str) -> bytes:
    api = vault_api(run, addr)
    async with run.http.get(f"{addr}/v1/sys/storage/raft/snapshot",
                            headers=api.headers(), ssl=api.ssl,
                            timeout=aiohttp.ClientTimeout(total=60)) as r:
        if r.status != 200:
            raise Abort(f"snapshot: HTTP {r.status}")
        return await r.read()


async def _restore(run: Run, addr: str, snapshot: bytes) -> None:
    api = vault_api(run, addr)
    async with run.http.post(f"{addr}/v1/sys/storage/raft/snapshot", data=snapshot,
                             headers=api.headers(), ssl=api.ssl,
                             timeout=aiohttp.ClientTimeout(total=120)) as r:
        if r.status not in (200, 204):
            raise Abort(f"restore: HTTP {r.status}: {(await r.text())[:200]}")


class Audit(Scenario):
    id = "vault-ha.audit"
    title = "a read, a write and a failed auth are audited; secret values only as HMAC"
    mutates = ("write a KV secret under secret/opsconsole/audit-* (the audited write)",)

    def steady_state(self):
        return [vault_one_leader()]

    async def method(self, run: Run) -> None:
        audit_log = run.lab.audit_log
        addr = leader_addr(run)
        if addr is None:
            raise Abort("no leader")
        start = audit_log.stat().st_size if audit_log.exists() else 0
        path = f"opsconsole/audit-{uuid.uuid4().hex[:8]}"
        secret_value = f"plaintext-{uuid.uuid4().hex}"
        await vault_request(run, addr, "POST", f"secret/data/{path}",
                            {"data": {"v": secret_value}})
        await vault_request(run, addr, "GET", f"secret/data/{path}")
        bad = vault_api(run, addr)
        bad.token = "s.not-a-valid-token"
        denied, _ = await bad.call("GET", f"secret/data/{path}")

        def entries() -> list[dict[str, Any]]:
            with open(audit_log, "rb") as fh:
                fh.seek(start)
                out = []
                for line in fh.read().splitlines():
                    try:
                        out.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue  # a line another node is still writing
                return out

        def find(*ops: str, error: bool = False) -> bool:
            return any(e.get("type") == "response" and e.get("request", {}).get("path") ==
                       f"secret/data/{path}" and e.get("request", {}).get("operation") in ops
                       and bool(e.get("error")) == error for e in entries())

        await run.wait_until("the audit entries", lambda: find("read", error=True), 10)
        await run.record("write is audited", outcome(find("create", "update")))
        await run.record("read is audited", outcome(find("read")))
        await run.record("failed auth is audited",
                      outcome(denied == 403 and find("read", error=True), status=denied))
        raw = audit_log.read_bytes()[start:]
        await run.record("secret values never in plaintext (HMAC only)", outcome(
            secret_value.encode() not in raw and b"hmac-sha256:" in raw,
            bytes_checked=len(raw)))




def _kv_get(run: Run, node: str, path: str) -> str | None:
    code, out = bao_in_namespace(run, node, "kv", "get", "-format=json", f"secret/{path}")
    if code != 0:
        return None
    try:
        return json.loads(out)["data"]["data"]["v"]
    except (json.JSONDecodeError, KeyError, TypeError):
        return None


class SplitBrain(Scenario):
    id = "vault-ha.split-brain"
    title = "two-way partitions of a follower and of the leader: no second leader, no " \
            "minority writes, stale reads measured, same data after healing"
    mutates = (WRITES_STEADY_KEY, "partition a follower, then the leader (faults)",
               "write KV secrets under secret/opsconsole/split-*")

    def steady_state(self):
        return [vault_one_leader(), vault_write_read()]

    def plan(self):
        return ["partition a follower: minority refuses writes, never leads; count stale reads",
                "heal: same data", "partition the leader: majority elects a new one",
                "the isolated old leader cannot commit", "heal: it rejoins as a follower"]

    async def method(self, run: Run) -> None:
        import asyncio

        key = f"opsconsole/split-{uuid.uuid4().hex[:8]}"

        async def write(value: str) -> int:
            addr = leader_addr(run)
            return (await vault_request(run, addr, "POST", f"secret/data/{key}",
                                        {"data": {"v": value}}))[0] if addr else 0

        await write("before")
        follower = next(n for n in _nodes(run) if not run.state.vault.nodes[n].leader)
        fault = await run.inject("vault.partition", follower)
        majority_ok = await write("during")
        await run.record("follower partitioned: majority keeps writing",
                      outcome(majority_ok == 200, status=majority_ok))
        code, err = await asyncio.to_thread(bao_in_namespace, run, follower, "kv", "put",
                                            f"secret/{key}-minority", "v=minority")
        await run.record("follower partitioned: minority accepts no writes",
                      outcome(code != 0, exit=code, error=err.strip().splitlines()[-1:]))
        reads = [await asyncio.to_thread(_kv_get, run, follower, key) for _ in range(5)]
        # OpenBao standbys may serve reads locally: report stale reads, do not hide them.
        run.metric("stale_reads_from_minority", sum(1 for r in reads if r == "before"))
        run.metric("minority_reads_refused", sum(1 for r in reads if r is None))
        code, status = await asyncio.to_thread(bao_in_namespace, run, follower, "status",
                                               "-format=json")
        led = code == 0 and json.loads(status or "{}").get("is_self") is True
        await run.record("follower partitioned: never became leader", outcome(not led))
        await run.heal(fault)

        async def same_data(_: Run, node: str = follower) -> Outcome:
            got = await asyncio.to_thread(_kv_get, run, node, key)
            return outcome(got == "during", node=node, value=got)

        await run.expect("follower healed: same data as the majority", same_data, within=30)

        old = run.state.vault.leader
        if old is None:
            raise Abort("no leader before the leader partition")
        started = time.monotonic()
        fault = await run.inject("vault.partition", old)
        await run.wait_until("the majority to elect a new leader",
                             lambda: run.state.vault.leader not in (None, old), 30)
        run.metric("leader_partition_failover_seconds", time.monotonic() - started)
        status = await write("after-leader-partition")
        await run.record("leader partitioned: majority elects a new leader and writes",
                      outcome(status == 200, new_leader=run.state.vault.leader,
                               status=status))
        code, err = await asyncio.to_thread(bao_in_namespace, run, old, "kv", "put",
                                            f"secret/{key}-old-leader", "v=old")
        await run.record("leader partitioned: the isolated old leader commits nothing",
                      outcome(code != 0, exit=code, error=err.strip().splitlines()[-1:]))
        await run.heal(fault)

        async def rejoined(_: Run) -> Outcome:
            view = run.state.vault.nodes.get(old)
            got = await asyncio.to_thread(_kv_get, run, old, key)
            ok = bool(view and view.reachable and not view.leader
                      and got == "after-leader-partition")
            return outcome(ok, node=old, value=got)

        await run.expect("old leader healed: rejoins as a follower with the same data",
                         rejoined, within=30)
        lost = [suffix for suffix in ("-minority", "-old-leader")
                if await asyncio.to_thread(_kv_get, run, next(
                    n for n in _nodes(run) if n not in (old, follower)), key + suffix)]
        run.metric("partitioned_writes_applied_after_heal", len(lost))


SCENARIOS: list[type[Scenario]] = [Health, Failover, SplitBrain, Load, BackupRestore, Audit,
                                   MetricsAlerts]
