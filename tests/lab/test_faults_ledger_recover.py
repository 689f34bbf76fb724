"""The ledger heals what a crashed run left behind: a real process it paused is resumed."""

from __future__ import annotations

import subprocess
import sys

import psutil

from opsconsole.config import Inventory
from opsconsole.core.bus import EventBus
from opsconsole.core.events import FaultHealed
from opsconsole.faults import FaultContext, FaultLedger, FaultManager

from ..helpers import wait_until


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


