"""`opsconsole vault health` and the first part of the `vault-ha` pack, on the lab."""

from __future__ import annotations

import json

from opsconsole.config import Inventory, LabSpec
from opsconsole.faults.ledger import FaultLedger
from opsconsole.lab import Lab
from opsconsole.session import ConsoleSession

from .conftest import async_wait_until, run_cli


async def test_vault_health_exits_1_while_a_node_is_sealed(lab: Lab, tmp_path) -> None:
    ok = run_cli("vault", "health", "--state-dir", str(lab.dir.root))
    assert ok.returncode == 0 and "all nodes healthy" in ok.stdout, ok.stdout + ok.stderr
    session = ConsoleSession(Inventory(name="lab", lab=LabSpec()),
                             lab_state_dir=str(lab.dir.root), start_lab=False, probes=False,
                             canaries=False, ledger=FaultLedger(tmp_path / "ledger.jsonl"))
    await session.start()
    try:
        victim = next(n.name for n in lab.topology().vault
                      if n.api_addr != lab.env()["VAULT_ADDR"])  # a standby
        rec = await session.faults.inject("vault.seal", victim)
        sealed = run_cli("vault", "health", "--state-dir", str(lab.dir.root))
        assert sealed.returncode == 1
        assert "SEALED" in sealed.stdout and "NOT healthy" in sealed.stdout
        await session.faults.heal(rec)

        def healthy_again() -> bool:
            return run_cli("vault", "health", "--state-dir", str(lab.dir.root)).returncode == 0

        await async_wait_until(healthy_again, 30, "vault health to pass after the unseal")
    finally:
        await session.stop()


def test_vault_ha_pack_first_part_passes(lab: Lab, tmp_path) -> None:
    """Includes split-brain: a real network-namespace partition (CI runs as root)."""
    out = run_cli("run", "vault-ha", "--report", str(tmp_path / "out"), "--json",
                  "--state-dir", str(lab.dir.root), timeout=300)
    assert out.returncode == 0, out.stderr[-2000:] + out.stdout[-2000:]
    results = {r["id"]: r for r in json.loads(out.stdout)}
    assert set(results) == {"vault-ha.health", "vault-ha.failover", "vault-ha.split-brain",
                            "vault-ha.backup-restore", "vault-ha.audit"}
    split = results["vault-ha.split-brain"]
    assert {"stale_reads_from_minority", "leader_partition_failover_seconds"} <= set(
        split["metrics"])
    assert 0 < results["vault-ha.failover"]["metrics"]["failover_seconds"] < 30
    backup = results["vault-ha.backup-restore"]["metrics"]
    assert backup["snapshot_bytes"] > 0 and "restore_seconds" in backup
