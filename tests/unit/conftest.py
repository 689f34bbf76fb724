"""The unit tier starts no process: any attempt fails the test that made it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


class ProcessStarted(AssertionError):
    """A unit test tried to start a process (move it to tests/lab)."""


def _refuse(*args: object, **kwargs: object) -> None:
    raise ProcessStarted("the unit tier starts no process; this test belongs in tests/lab")


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(subprocess.Popen, "_execute_child", _refuse)
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system",
                 "execv", "execve", "execvp", "execvpe"):
        if hasattr(os, name):
            monkeypatch.setattr(os, name, _refuse)
    yield


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from ..conftest import PROCESS_FIXTURES

    here = os.path.dirname(__file__) + os.sep
    for item in items:
        uses = PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses and str(item.path).startswith(here):
            raise pytest.UsageError(f"{item.nodeid} is in the unit tier but uses "
                                    f"{', '.join(sorted(uses))}: move it to tests/lab")


@pytest.fixture
def unreachable_inventory(tmp_path) -> Path:
    """An inventory whose only target does not answer (nothing is probed successfully)."""
    path = tmp_path / "unit.toml"
    path.write_text('name = "unit"\n[[nats]]\nname = "c"\n[[nats.nodes]]\nname = "n1"\n'
                    'client_url = "nats://127.0.0.1:1"\nmonitor_url = "http://127.0.0.1:1"\n')
    return path
