"""Negative controls for checks that used to record a pass they had not observed: break
the thing each one is about and see that check — the pack's own code — fail."""

from __future__ import annotations

import pytest

from opsconsole.config import load_config
from opsconsole.faults import FaultContext, FaultLedger, FaultManager
from opsconsole.scenarios.engine import run_scenario
from opsconsole.session import ConsoleSession
from opsconsole.systems.smoke.packs.smoke import Config, config_problems

GOOD = ('name = "deployment"\n[[nats]]\nname = "c"\n[[nats.nodes]]\nname = "n1"\n'
        'client_url = "nats://127.0.0.1:1"\nmonitor_url = "http://127.0.0.1:1"\n')


@pytest.fixture
def deployment(tmp_path) -> ConsoleSession:
    path = tmp_path / "deployment.toml"
    path.write_text(GOOD)
    session = ConsoleSession(load_config(path), probes=False)
    session.faults = FaultManager(FaultContext(session.inventory, None), session.bus,
                                  ledger=FaultLedger(tmp_path / "faults.jsonl"))
    return session


async def test_config_valid_fails_when_the_file_no_longer_validates(deployment) -> None:
    ok = await run_scenario(Config(), deployment, deployment.faults)
    checks = {c.name: c for c in ok.checks}
    assert checks["config valid"].status == "pass" and ok.status == "pass"
    assert "required binaries present" not in checks  # no lab: nothing to look for

    deployment.inventory.source.write_text(GOOD.replace("nats://127.0.0.1:1", "ftp://x"))
    broken = await run_scenario(Config(), deployment, deployment.faults)
    rec = next(c for c in broken.checks if c.name == "config valid")
    assert rec.status == "fail" and broken.status == "fail"
    assert any("client_url" in p for p in rec.evidence["problems"]), rec.evidence


def test_config_problems_of_the_built_in_lab_defaults() -> None:
    from opsconsole.config import Inventory, LabSpec

    assert config_problems(Inventory(name="lab", lab=LabSpec())) == []
