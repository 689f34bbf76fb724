"""The `vault-ha` pack (first part): health, failover, backup/restore, audit.

Still to come in this pack: split-brain with stale-read measurement, the open-loop
load generator with HDR histograms and --find-max, metrics and alerts.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import aiohttp

from ..checks import leader_addr, vault_one_leader, vault_request, vault_write_read
from ..engine import Abort, Check, Outcome, Run, Scenario
from .lab import VaultLeaderKill


def _outcome(ok: bool, **evidence: Any) -> Outcome:
    return ("pass" if ok else "fail"), evidence


async def _record(run: Run, name: str, outcome: Outcome) -> None:
    async def fn(_: Run) -> Outcome:
        return outcome

    await run.check(Check(name, fn))


def _nodes(run: Run) -> list[str]:
    assert run.inventory.vault is not None
    return [n.name for n in run.inventory.vault.nodes]


class Health(Scenario):
    id = "vault-ha.health"
    title = "every node reachable and unsealed, 3 voters, exactly one leader, roles known"
    needs_lab = False

    def steady_state(self):
        return [vault_one_leader()]

    async def method(self, run: Run) -> None:
        views = {n: run.state.vault.get(n) for n in _nodes(run)}
        await _record(run, "every node reachable and unsealed", _outcome(
            all(v and v.reachable and v.sealed is False for v in views.values()),
            **{n: (v.reason or ("sealed" if v.sealed else "ok")) if v else "no sample"
               for n, v in views.items()}))
        voters = [n for n, v in views.items() if v and v.voter]
        await _record(run, "raft has 3 voters", _outcome(len(voters) == 3, voters=voters))
        leaders = [n for n, v in views.items() if v and v.reachable and v.leader]
        await _record(run, "exactly one leader", _outcome(len(leaders) == 1, leaders=leaders))
        roles = {n: ("leader" if v.leader else "standby") for n, v in views.items()
                 if v and v.reachable}
        await _record(run, "roles identified", _outcome(
            len(roles) == len(views) and sorted(roles.values()).count("leader") == 1,
            roles=roles))


class Failover(VaultLeaderKill):
    id = "vault-ha.failover"
    title = "kill the leader: detect, new leader, first write; the node rejoins with the data"


class BackupRestore(Scenario):
    id = "vault-ha.backup-restore"
    title = "write secrets, raft snapshot, delete them, restore, every secret back"
    count = 20

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
        await _record(run, "secrets deleted before the restore",
                      _outcome(not gone, still_present=len(gone)))

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
            return _outcome(not missing, restored=len(values) - len(missing),
                            total=len(values))

        await run.expect("every secret came back after the restore", all_back, within=60)
        run.metric("verify_seconds", time.monotonic() - t)


async def _token(run: Run) -> str:
    vault = run.inventory.vault
    return vault.token.resolve() if vault and vault.token else ""


async def _snapshot(run: Run, addr: str) -> bytes:
    async with run.http.get(f"{addr}/v1/sys/storage/raft/snapshot",
                            headers={"X-Vault-Token": await _token(run)},
                            timeout=aiohttp.ClientTimeout(total=60)) as r:
        if r.status != 200:
            raise Abort(f"snapshot: HTTP {r.status}")
        return await r.read()


async def _restore(run: Run, addr: str, snapshot: bytes) -> None:
    async with run.http.post(f"{addr}/v1/sys/storage/raft/snapshot", data=snapshot,
                             headers={"X-Vault-Token": await _token(run)},
                             timeout=aiohttp.ClientTimeout(total=120)) as r:
        if r.status not in (200, 204):
            raise Abort(f"restore: HTTP {r.status}: {(await r.text())[:200]}")


class Audit(Scenario):
    id = "vault-ha.audit"
    title = "a read, a write and a failed auth are audited; secret values only as HMAC"

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
        async with run.http.get(f"{addr}/v1/secret/data/{path}",
                                headers={"X-Vault-Token": "s.not-a-valid-token"}) as r:
            denied = r.status

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
        await _record(run, "write is audited", _outcome(find("create", "update")))
        await _record(run, "read is audited", _outcome(find("read")))
        await _record(run, "failed auth is audited",
                      _outcome(denied == 403 and find("read", error=True), status=denied))
        raw = audit_log.read_bytes()[start:]
        await _record(run, "secret values never in plaintext (HMAC only)", _outcome(
            secret_value.encode() not in raw and b"hmac-sha256:" in raw,
            bytes_checked=len(raw)))


SCENARIOS: list[type[Scenario]] = [Health, Failover, BackupRestore, Audit]
