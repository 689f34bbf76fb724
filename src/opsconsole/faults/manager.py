"""Inject and heal faults through the ledger, publishing every step on the bus.

Every ledger access (flock + fsync, or reading the file) runs in a worker thread:
the manager runs on the console's loop, which is also the UI's."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from pydantic import ValidationError

from ..core.bus import EventBus
from ..core.events import FaultHealed, FaultInjected
from ..core.tasks import cancel_and_wait
from ..errors import UserError, validation_message
from .kinds import REGISTRY, FaultContext, FaultKind, NothingApplied
from .ledger import FaultLedger, FaultRecord

DEFAULT_TTL_S = 300.0
READ_ONLY_REFUSAL = "read-only mode: fault actions are refused"


class InvalidHealSpec(UserError):
    """A heal spec that does not fit its kind's ``Heal`` model."""


def heal_spec(kind: FaultKind, spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` validated by ``kind.Heal``, as JSON-able data; :class:`InvalidHealSpec`
    naming the field otherwise."""
    try:
        return kind.Heal.model_validate(spec).model_dump(mode="json")
    except ValidationError as exc:
        raise InvalidHealSpec(f"the heal spec of {kind.id} is not valid: "
                              f"{validation_message(exc)}") from None


class FaultManager:
    def __init__(self, ctx: FaultContext, bus: EventBus, *, ledger: FaultLedger | None = None,
                 read_only: bool = False) -> None:
        self.ctx = ctx
        self.bus = bus
        self.ledger = ledger or FaultLedger()
        self.read_only = read_only
        self._watcher: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ inject
    def kind(self, fault: str) -> FaultKind:
        try:
            return REGISTRY[fault]
        except KeyError:
            known = ", ".join(sorted(REGISTRY))
            raise UserError(f"unknown fault kind {fault!r} (known: {known})") from None

    async def inject(self, fault: str, target: str, params: dict[str, Any] | None = None,
                     ttl_s: float = DEFAULT_TTL_S, run_id: str = "") -> FaultRecord:
        if self.read_only:
            raise UserError(READ_ONLY_REFUSAL)
        kind = self.kind(fault)
        try:
            params = kind.Params.model_validate(params or {}).model_dump(mode="json")
        except ValidationError as exc:
            raise UserError(f"fault {fault} refused: parameter "
                            f"{validation_message(exc)}") from None
        if not (kind.live_targets or target in kind.targets(self.ctx)):
            raise UserError(f"fault {fault} refused: {target!r} is not a target in the "
                            f"inventory ({self.ctx.inventory.name})")
        heal = heal_spec(kind, await kind.prepare(self.ctx, target, params))
        rec = await asyncio.to_thread(self.ledger.open_fault, fault, target, params, ttl_s,
                                      heal=heal, run_id=run_id)
        try:
            await kind.inject(self.ctx, target, params, heal)
        except NothingApplied as exc:
            await asyncio.to_thread(self.ledger.mark, rec.id, "healed",
                                    note=f"injection failed, nothing applied: {exc}")
            raise
        except Exception:
            # It may have half-happened: heal now from the recorded spec, then report.
            await self.heal(rec)
            raise
        await asyncio.to_thread(self.ledger.mark, rec.id,
                                "healed" if kind.one_shot else "active",
                                note="one-shot action" if kind.one_shot else "")
        rec.status = "active"
        self.bus.publish(FaultInjected(fault_id=rec.id, fault=fault, target=target,
                                       params=params, ttl_s=ttl_s))
        if kind.one_shot:
            self.bus.publish(FaultHealed(fault_id=rec.id, fault=fault, target=target,
                                         how="one-shot action"))
        return rec

    async def open_records(self) -> list[FaultRecord]:
        """The ledger's open faults, read off the loop (the file grows with history)."""
        return await asyncio.to_thread(self.ledger.open_records)

    # -------------------------------------------------------------------- heal
    async def heal(self, rec: FaultRecord) -> bool:
        kind = REGISTRY.get(rec.fault)
        try:
            # the spec is read back from the ledger (maybe written by a process that
            # crashed, or an older opsconsole): validated again before it is acted on
            how = await kind.heal(self.ctx, heal_spec(kind, rec.heal)) if kind else (
                "unknown kind")
            ok = True
        except Exception as exc:  # a heal failure stays in the ledger for the next try
            how, ok = f"{type(exc).__name__}: {exc}", False
        rec.status, rec.note = ("healed" if ok else "heal_failed"), how
        await asyncio.to_thread(self.ledger.mark, rec.id, rec.status, note=how)
        self.bus.publish(FaultHealed(fault_id=rec.id, fault=rec.fault, target=rec.target,
                                     how=how, ok=ok))
        return ok

    async def heal_all(self, run_id: str | None = None) -> list[FaultRecord]:
        """Heal every open fault (optionally only one run's), newest first."""
        if self.read_only:
            raise UserError(READ_ONLY_REFUSAL)
        recs = [r for r in await self.open_records() if run_id is None or r.run_id == run_id]
        recs.sort(key=lambda r: r.created_at, reverse=True)
        for rec in recs:
            await self.heal(rec)
        return recs

    async def recover(self) -> list[FaultRecord]:
        """At start: heal what a crashed process left behind, and anything expired."""
        now = time.time()
        stale = [r for r in await self.open_records()
                 if not r.owner_alive() or r.expires_at <= now]
        for rec in sorted(stale, key=lambda r: r.created_at, reverse=True):
            await self.heal(rec)
        if stale:
            await asyncio.to_thread(self.ledger.compact)
        return stale

    # ------------------------------------------------------------------- TTL
    def start_watcher(self, interval: float = 1.0) -> None:
        async def watch() -> None:
            while True:
                now = time.time()
                for rec in await self.open_records():
                    if rec.expires_at <= now:
                        await self.heal(rec)
                await asyncio.sleep(interval)

        self._watcher = asyncio.create_task(watch())

    async def stop_watcher(self) -> None:
        if self._watcher is not None:
            await cancel_and_wait(self._watcher)
