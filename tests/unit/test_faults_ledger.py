"""The ledger is written before injection, keeps live owners' faults, heals expired ones,
refuses what read-only mode and the inventory forbid, and survives a torn last line."""

from __future__ import annotations

import time

from opsconsole.config import Inventory
from opsconsole.core.bus import EventBus
from opsconsole.errors import UserError
from opsconsole.faults import FaultContext, FaultLedger, FaultManager

from ..helpers import wait_until


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
