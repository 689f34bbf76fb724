"""The console against a hand-made secured deployment: health, smoke, packs, errors."""

from __future__ import annotations

from ..helpers import run_cli
from .conftest import Foreign


def opsconsole(*args: str, env: dict[str, str]):
    return run_cli(*args, env=env)


def test_vault_health_over_tls_with_the_inventory(foreign: Foreign) -> None:
    done = opsconsole("vault", "health", "--config", str(foreign.inventory), env=foreign.env)
    assert done.returncode == 0, done.stdout + done.stderr
    print(done.stdout)
