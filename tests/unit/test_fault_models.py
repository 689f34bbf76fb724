"""Fault parameters and heal specs are models: validated at injection, and again when the
ledger is read to heal (after a crash, by another process)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from pydantic import PositiveInt

from opsconsole.config import Inventory
from opsconsole.core.bus import EventBus
from opsconsole.errors import UserError
from opsconsole.faults import REGISTRY, FaultContext, FaultKind, FaultLedger, FaultManager
from opsconsole.faults.kinds import FaultParams, HealSpec, StrictHealSpec
from opsconsole.faults.manager import InvalidHealSpec


class CountParams(FaultParams):
    times: PositiveInt = 2


class CountHeal(StrictHealSpec):
    target: str
    times: int


class Counter(FaultKind):
    """Counts up on inject and down on heal; a spec it is told to return can be wrong."""

    id = "unit.counter"
    title = "count"
    Params = CountParams
    Heal = CountHeal
    state: ClassVar[dict[str, Any]] = {}

    def targets(self, ctx):
        return ["c"]

    async def prepare(self, ctx, target, params):
        return self.state.get("spec") or {"target": target, "times": params["times"]}

    async def inject(self, ctx, target, params, heal):
        self.state["count"] = self.state.get("count", 0) + heal["times"]

    async def heal(self, ctx, spec):
        self.state["count"] -= spec["times"]
        return f"counted down {spec['times']}"


@pytest.fixture
def counter(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    Counter.state.clear()
    monkeypatch.setitem(REGISTRY, Counter.id, Counter())
    return Counter.state


def _manager(tmp_path) -> FaultManager:
    return FaultManager(FaultContext(Inventory(name="unit"), None),  # type: ignore[arg-type]
                        EventBus(), ledger=FaultLedger(tmp_path / "faults.jsonl"))


async def test_parameters_are_typed_and_defaulted(tmp_path, counter) -> None:
    manager = _manager(tmp_path)
    rec = await manager.inject("unit.counter", "c", {"times": "3"})
    assert rec.params == {"times": 3} and counter["count"] == 3
    await manager.heal(rec)
    rec = await manager.inject("unit.counter", "c")
    assert rec.params == {"times": 2} and counter["count"] == 2  # the model's default


@pytest.mark.parametrize(("params", "message"), [
    ({"times": 0}, "parameter times: Input should be greater than 0"),
    ({"times": "many"}, "parameter times: Input should be a valid integer"),
    ({"tims": 3}, "parameter tims: Extra inputs are not permitted"),
])
async def test_a_bad_parameter_is_refused_before_anything_happens(tmp_path, counter, params,
                                                                  message) -> None:
    manager = _manager(tmp_path)
    with pytest.raises(UserError) as info:
        await manager.inject("unit.counter", "c", params)
    assert str(info.value).startswith(f"fault unit.counter refused: {message}")
    assert manager.ledger.records() == {} and "count" not in counter


async def test_a_heal_spec_that_does_not_fit_its_model_is_never_recorded(tmp_path,
                                                                        counter) -> None:
    counter["spec"] = {"target": "c"}  # `times` missing: a bug of the kind
    manager = _manager(tmp_path)
    with pytest.raises(InvalidHealSpec) as info:
        await manager.inject("unit.counter", "c")
    assert str(info.value) == "the heal spec of unit.counter is not valid: times: Field required"
    assert manager.ledger.records() == {} and "count" not in counter  # nothing applied


async def test_a_spec_broken_in_the_ledger_is_a_failed_heal_never_acted_on(tmp_path,
                                                                          counter) -> None:
    ledger = FaultLedger(tmp_path / "faults.jsonl")
    # what a crashed process left behind (expired at once): one good record, one whose
    # spec was damaged
    good = ledger.open_fault("unit.counter", "c", {"times": 1}, 1e-6,
                             heal={"target": "c", "times": 1})
    bad = ledger.open_fault("unit.counter", "c", {"times": 1}, 1e-6,
                            heal={"target": "c", "times": "lots"})
    counter["count"] = 2
    manager = FaultManager(FaultContext(Inventory(name="unit"), None),  # type: ignore[arg-type]
                           EventBus(), ledger=ledger)
    healed = {r.id: r for r in await manager.recover()}
    assert healed[good.id].status == "healed"
    assert healed[bad.id].status == "heal_failed"
    assert "heal spec of unit.counter is not valid: times: Input should be a valid integer" \
        in healed[bad.id].note
    assert counter["count"] == 1  # only the good spec was acted on
    assert [r.id for r in ledger.open_records()] == [bad.id]  # kept for a later try


def test_every_built_in_kind_declares_a_strict_heal_spec() -> None:
    for kind in REGISTRY.values():
        if type(kind).__module__.startswith("opsconsole."):
            assert issubclass(kind.Params, FaultParams), kind.id
            assert issubclass(kind.Heal, StrictHealSpec), kind.id
    assert not issubclass(HealSpec, StrictHealSpec)  # a plugin's default checks nothing
