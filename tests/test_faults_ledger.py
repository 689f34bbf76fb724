"""The ledger is written before injection and heals what a crashed run left behind."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from opsconsole.config import Inventory
from opsconsole.core.bus import EventBus
from opsconsole.core.events import FaultHealed
from opsconsole.errors import UserError
from opsconsole.faults import FaultContext, FaultLedger, FaultManager

from .conftest import wait_until


def _dead_pid() -> tuple[int, float]:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    started = psutil.Process(proc.pid).create_time()
    proc.wait()
    return proc.pid, started


async def test_recover_resumes_a_process_paused_by_a_crashed_run(tmp_path) -> None:
    victim = subprocess.Popen(["sleep", "60"])
    try:
        proc = psutil.Process(victim.pid)
        ledger = FaultLedger(tmp_path / "faults.jsonl")
        rec = ledger.open_fault("process.pause", "sleeper", {}, 300,
                                heal={"pid": victim.pid, "create_time": proc.create_time(),
                                      "node": "sleeper"})
        proc.suspend()
        ledger.mark(rec.id, "active")
        # The injecting process "crashed": make the record's owner a dead process.
        lines = (tmp_path / "faults.jsonl").read_text()
        pid, started = _dead_pid()
        (tmp_path / "faults.jsonl").write_text(
            lines.replace(f'"owner_pid": {rec.owner_pid}', f'"owner_pid": {pid}')
                 .replace(f'"owner_started": {rec.owner_started}',
                          f'"owner_started": {started}'))
        wait_until(lambda: proc.status() == psutil.STATUS_STOPPED, 5, "the victim to stop")

        bus = EventBus()
        seen: list = []
        bus.subscribe(seen.append)
        import aiohttp

        async with aiohttp.ClientSession() as http:
            manager = FaultManager(FaultContext(Inventory(name="t"), http), bus, ledger=ledger)
            healed = await manager.recover()
        assert [r.id for r in healed] == [rec.id]
        assert proc.status() != psutil.STATUS_STOPPED
        assert ledger.open_records() == []
        assert any(isinstance(e, FaultHealed) and e.ok for e in seen)
    finally:
        victim.kill()
        victim.wait()


async def test_recover_leaves_live_owners_alone_but_heals_expired(tmp_path) -> None:
    import aiohttp

    ledger = FaultLedger(tmp_path / "faults.jsonl")
    mine = ledger.open_fault("process.pause", "x", {}, 300, heal={"pid": 1, "create_time": 0,
                                                                 "node": "x"})
    ledger.mark(mine.id, "active")
    expired = ledger.open_fault("process.pause", "y", {}, 0.05,
                                heal={"pid": 1, "create_time": 0, "node": "y"})
    ledger.mark(expired.id, "active")
    wait_until(lambda: time.time() > expired.expires_at, 5, "the TTL to pass")
    async with aiohttp.ClientSession() as http:
        manager = FaultManager(FaultContext(Inventory(name="t"), http), EventBus(),
                               ledger=ledger)
        healed = await manager.recover()
    assert [r.id for r in healed] == [expired.id]
    assert [r.id for r in ledger.open_records()] == [mine.id]


async def test_refusals_read_only_unknown_kind_and_target(tmp_path) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as http:
        ctx = FaultContext(Inventory(name="t"), http)
        ro = FaultManager(ctx, EventBus(), ledger=FaultLedger(tmp_path / "a"), read_only=True)
        for call in (ro.inject("process.pause", "nats-1"), ro.heal_all()):
            try:
                await call
            except UserError as exc:
                assert "read-only" in str(exc)
            else:
                raise AssertionError("read-only mode injected or healed")
        rw = FaultManager(ctx, EventBus(), ledger=FaultLedger(tmp_path / "b"))
        for fault, target, words in (("no.such", "x", "unknown fault kind"),
                                     ("process.pause", "not-in-inventory", "not a target")):
            try:
                await rw.inject(fault, target)
            except UserError as exc:
                assert words in str(exc)
            else:
                raise AssertionError(f"{fault} on {target} was not refused")
        assert rw.ledger.records() == {}  # nothing recorded for refused faults


def test_a_torn_last_line_is_ignored(tmp_path) -> None:
    ledger = FaultLedger(tmp_path / "faults.jsonl")
    rec = ledger.open_fault("process.pause", "x", {}, 300, heal={})
    with open(ledger.path, "a") as fh:
        fh.write('{"op": "mark", "id": "')  # crash mid-write
    assert ledger.records()[rec.id].status == "pending"
