"""Lab lifecycle under abuse: killed mid-start, port clashes, missing binaries."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from opsconsole.lab.ports import listening
from opsconsole.lab.procs import find_marked
from opsconsole.lab.state import StateDir

from ..helpers import REPO, run_cli, wait_until


def _assert_nothing_left(state_dir) -> None:
    state = StateDir(Path(state_dir)).load()
    assert find_marked(str(state_dir)) == []
    ports = [p for node in state.ports.values() for p in node.values()]
    assert ports, "the lab never recorded its ports"
    assert [p for p in ports if listening(p)] == []


def test_kill9_during_lab_up_then_down_leaves_nothing(tmp_path) -> None:
    state_dir = tmp_path / "lab"
    proc = subprocess.Popen(
        [sys.executable, "-m", "opsconsole.cli", "lab", "up", "--state-dir", str(state_dir)],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # Kill it mid-start: NATS and some OpenBao nodes spawned, cluster not yet formed.
        wait_until(lambda: len(StateDir(state_dir).load().procs) >= 6, 30,
                   "lab up to spawn processes")
        assert StateDir(state_dir).load().phase == "starting"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert find_marked(str(state_dir)), "children should outlive the killed console"
    down = run_cli("lab", "down", "--state-dir", str(state_dir))
    assert down.returncode == 0, down.stderr
    _assert_nothing_left(state_dir)


def test_port_clash_is_one_line_then_recovers(tmp_path) -> None:
    state_dir = str(tmp_path / "lab")
    up = run_cli("lab", "up", "--json", "--state-dir", state_dir)
    assert up.returncode == 0, up.stderr
    status = json.loads(up.stdout)
    try:
        victim = status["pids"]["nats-3"]
        os.kill(victim, signal.SIGKILL)
        port = int(status["nats"][2]["client_url"].rsplit(":", 1)[1])
        wait_until(lambda: not listening(port), 10, "nats-3 to die")
        squatter = socket.socket()
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        try:
            clash = run_cli("lab", "up", "--state-dir", state_dir)
        finally:
            squatter.close()
        assert clash.returncode == 2
        err = clash.stderr.strip().splitlines()
        assert len(err) == 1 and "port clash" in err[0] and str(port) in err[0], err
        assert "nats-3" in err[0]

        # With the port free again, `lab up` restarts only the missing node.
        again = run_cli("lab", "up", "--json", "--state-dir", state_dir)
        assert again.returncode == 0, again.stderr
        healed = json.loads(again.stdout)
        assert healed["healthy"]
        assert healed["pids"]["nats-3"] != victim
        assert healed["pids"]["vault-1"] == status["pids"]["vault-1"]
    finally:
        down = run_cli("lab", "down", "--state-dir", state_dir)
    assert down.returncode == 0, down.stderr
    _assert_nothing_left(state_dir)


def test_missing_binary_is_one_line_exit_2(tmp_path) -> None:
    out = run_cli("lab", "up", "--state-dir", str(tmp_path / "lab"),
                  env={"OPSCONSOLE_NATS_SERVER": str(tmp_path / "no-such-nats-server")})
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "missing binary" in lines[0] and "OPSCONSOLE_NATS_SERVER" in lines[0]
    assert find_marked(str(tmp_path / "lab")) == []  # nothing half-started
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    state = StateDir(tmp_path / "lab").load()
    assert state.netns is None or not any(ns in netns for ns in state.netns["namespaces"].values())


def test_lab_command_on_a_non_lab_config_is_refused(tmp_path) -> None:
    out = run_cli("lab", "status", "--config", "config/example-aws.toml",
                  "--state-dir", str(tmp_path))
    assert out.returncode == 2
    assert "[lab]" in out.stderr and "Traceback" not in out.stderr
