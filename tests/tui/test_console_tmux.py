"""The acceptance walk of the live console, in a real terminal (tmux) on the real lab."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys

import pytest

from opsconsole.lab import Lab

from ..helpers import PERFORMANCE_CHECKS, REPO, run_cli, wait_until

TITLES = ["Cluster health", "NATS relay flow", "Vault instances", "Scale-test histograms"]
LEADER_ROW = re.compile(r"(vault-\d)\s+\S+\s+★")


class Tmux:
    """A private tmux server (its own socket), so the test never touches the user's."""

    def __init__(self, name: str) -> None:
        if shutil.which("tmux") is None:
            pytest.fail("tmux is required (make venv installs it with apt-get)")
        self.base = ["tmux", "-L", name]

    def start(self, command: str, width: int = 160, height: int = 48) -> None:
        subprocess.run([*self.base, "new-session", "-d", "-s", "oc", "-x", str(width),
                        "-y", str(height), command], check=True)

    def screen(self) -> str:
        out = subprocess.run([*self.base, "capture-pane", "-p", "-t", "oc"],
                             capture_output=True, text=True)
        return out.stdout

    def keys(self, *keys: str) -> None:
        subprocess.run([*self.base, "send-keys", "-t", "oc", *keys], check=True)

    def kill(self) -> None:
        subprocess.run([*self.base, "kill-server"], capture_output=True)


def _leaders(screen: str) -> list[str]:
    return LEADER_ROW.findall(screen)


def test_console_follows_a_vault_leader_kill(lab: Lab, tmp_path) -> None:
    tmux = Tmux(f"opsconsole-test-{os.getpid()}")
    exit_file = tmp_path / "exit-code"
    console = shlex.join([sys.executable, "-m", "opsconsole.cli", "--state-dir",
                          str(lab.dir.root)])
    tmux.start(f"cd {shlex.quote(str(REPO))} && TERM=xterm-256color {console}; "
               f"echo $? > {shlex.quote(str(exit_file))}; sleep 30")
    try:
        def all_on_screen() -> str | None:
            screen = tmux.screen()
            names = [f"nats-{i}" for i in (1, 2, 3)] + [f"vault-{i}" for i in (1, 2, 3)]
            if all(t in screen for t in TITLES + names) and len(_leaders(screen)) == 1:
                return screen
            return None

        screen = wait_until(all_on_screen, 20, "panes, node names and one Vault leader")
        leader = _leaders(screen)[0]
        os.kill(lab.dir.load().procs[leader].pid, signal.SIGKILL)

        def failed_over() -> bool:
            screen = tmux.screen()
            dead_row = next((ln for ln in screen.splitlines() if f"{leader}  " in ln), "")
            return (len(_leaders(screen)) == 1 and _leaders(screen)[0] != leader
                    and "unreachable" in dead_row)

        wait_until(failed_over, 20, "a new leader and the killed node shown unreachable")
        tmux.keys("q")
        wait_until(exit_file.exists, 10, "the console to exit after q")
        wait_until(lambda: exit_file.read_text().strip() != "", 5, "the exit code")
        assert exit_file.read_text().strip() == "0"
    finally:
        tmux.kill()
        asyncio.run(lab.up())  # restart the killed node for the rest of the session


def test_demo_auto_walks_every_step_and_ends_with_a_verified_report(lab: Lab, tmp_path) -> None:
    """The demo walks all eight steps on screen and ends with a verified report; its exit
    code is the report's verdict. Every check passes but the load step's performance
    targets, which a busy host fails honestly: those must agree with their figures."""
    tmux = Tmux(f"opsconsole-demo-{os.getpid()}")
    out_file = tmp_path / "demo-output"
    report = tmp_path / "report"
    demo = shlex.join([sys.executable, "-m", "opsconsole.cli", "demo", "--auto", "--hold", "1",
                       "--report", str(report), "--state-dir", str(lab.dir.root)])
    tmux.start(f"cd {shlex.quote(str(REPO))} && TERM=xterm-256color {demo}; "
               f"echo EXIT=$? >> {shlex.quote(str(out_file))}; sleep 30")
    try:
        seen: set[str] = set()
        last = [""]  # the screen the last check read

        def narrated(title: str) -> bool:
            last[0] = screen = tmux.screen()
            for n in range(1, 9):
                if f"Step {n}/8" in screen:
                    seen.add(f"Step {n}/8")
            return title in screen

        wait_until(lambda: narrated("Step 1/8 · Lab health"), 60, "the first demo step")
        wait_until(lambda: narrated("REPORT VERIFIED") or out_file.exists(), 300,
                   "the demo to verify its report (or exit)")
        screen = last[0]
        if "REPORT VERIFIED" not in screen:
            pytest.fail("the demo did not end with a verified report; last screen:\n"
                        + screen[-1500:] + out_file.read_text())
        assert "Step 8/8 · The signed report" in screen
        assert len(seen) >= 6, seen  # the narration walked through the steps on screen
        wait_until(out_file.exists, 30, "the demo to exit")
        doc = json.loads((report / "transcript.json").read_text())
        assert run_cli("verify", str(report / "transcript.json")).returncode == 0
        for r in doc["scenarios"]:
            by_name = {c["name"]: c["status"] for c in r["checks"]}
            if r["id"] == "vault-ha.load":
                for name, meets in PERFORMANCE_CHECKS.items():
                    assert by_name.pop(name) == ("pass" if meets(r["metrics"]) else "fail"), (
                        name, r["metrics"])
            assert set(by_name.values()) == {"pass"}, (r["id"], r["reason"], by_name)
        assert out_file.read_text().strip() == ("EXIT=0" if doc["status"] == "pass"
                                                else "EXIT=1"), doc["status"]
    finally:
        tmux.kill()
