"""Helpers every tier shares: waits with deadlines and the real CLI in a subprocess."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

REPO = Path(__file__).resolve().parents[1]


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


def stop_process(proc: subprocess.Popen, grace: float = 15.0) -> None:
    """SIGTERM, up to ``grace`` seconds to exit, then SIGKILL (and reap it)."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def run_cli(*args: str, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `opsconsole` entry point in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "opsconsole.cli", *args], cwd=REPO,
                          env=full_env, capture_output=True, text=True, timeout=timeout)


def sign_control(key: Ed25519PrivateKey, command: str, user: str, ts: float | None = None,
                 nonce: str | None = None) -> bytes:
    """A Vault Manager control message signed with ``key``: the tests' own signer, the
    covered bytes spelled out as docs/contracts/vault-manager.md writes them (neither the
    reference's encoder nor the console's)."""
    nonce = nonce or uuid.uuid4().hex
    ts = time.time() if ts is None else ts
    covered = json.dumps({"command": command, "nonce": nonce, "ts": float(ts), "user": user},
                         sort_keys=True, separators=(",", ":")).encode()
    sig = base64.b64encode(key.sign(covered)).decode()
    return json.dumps({"command": command, "nonce": nonce, "ts": ts, "key_id": "ops",
                       "signature": sig}).encode()


# ------------------------------------------------------------------ example plugins
PLUGINS = REPO / "tests" / "data" / "plugins"


def install_plugins(dest: Path, *names: str) -> Path:
    """``pip install`` the example plugins ``names`` (folders of tests/data/plugins) into
    ``dest/site`` from a copy (the source tree stays clean); returns the site directory,
    which makes them installed for a process with it on ``PYTHONPATH``."""
    import shutil

    site, build = dest / "site", dest / "build"
    copies = []
    for name in names:
        shutil.copytree(PLUGINS / name, build / name)
        copies.append(str(build / name))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--no-deps", "--no-build-isolation", "--no-index", "--target", str(site),
                    *copies], check=True, capture_output=True, text=True, timeout=180)
    return site


def start_beacon(dest: Path, *, deaf: bool = False) -> tuple[subprocess.Popen[bytes], str]:
    """The example plugin's target, a real HTTP server on 127.0.0.1: (process, URL)."""
    port_file = dest / f"beacon-{uuid.uuid4().hex[:6]}.port"
    proc = subprocess.Popen([sys.executable, str(PLUGINS / "beacon_server.py"), str(port_file),
                             *(["--deaf"] if deaf else [])])
    wait_until(lambda: port_file.exists() and port_file.read_text().strip().isdigit(), 15,
               "the beacon to listen")
    return proc, f"http://127.0.0.1:{port_file.read_text().strip()}"


#: the `vault-ha.load` checks that measure how fast this host's OpenBao is: a slow or busy
#: host fails them honestly, so tests check each verdict against the figures it was
#: computed from (the figures themselves belong to bench/ and docs/PERFORMANCE.md)
PERFORMANCE_CHECKS = {"p99 below 50 ms": lambda m: m["p99_ms"] < 50,
                      "throughput at least 95% of offered":
                          lambda m: m["throughput_rps"] >= 0.95 * m["offered_rps"],
                      "error rate below 0.1%": lambda m: m["error_rate"] < 0.001}


def lab_endpoints(lab):  # -> (central endpoints, {leaf name: endpoint})
    """The lab's NATS servers with the console's login and the lab CA (the secured lab):
    what the console itself connects with."""
    topo = lab.topology()
    cluster = lab.nats_cluster(topo)
    return cluster.endpoints(), {lf.name: lab.leaf_node(lf).endpoint() for lf in topo.leaves}
