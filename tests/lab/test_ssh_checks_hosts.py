"""SSH host checks against real SSH servers: two in-process asyncssh servers on loopback
(a target and a jump host, both with pinned host keys) that run each command with a real
shell on this machine, so every check reads real state."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from opsconsole.config import load_config
from opsconsole.systems.ssh import checks as ssh_checks
from opsconsole.systems.ssh.checks import (
    CheckResult,
    HostReport,
    check_hosts,
    deb_compare,
)
from opsconsole.systems.ssh.config import SshConfig, SshHost

from ..helpers import async_wait_until
from ..ssh_servers import Env, closed_port, ssh_env

HAS_SYSTEMD = Path("/run/systemd/system").is_dir()
MY_COMM = Path("/proc/self/comm").read_text().strip()


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory):
    async with ssh_env(tmp_path_factory.mktemp("ssh-checks")) as e:
        yield e


def _by_name(report: HostReport) -> dict[str, CheckResult]:
    return {c.name: c for c in report.checks}


# --------------------------------------------------------------------------- checks


async def test_all_kinds_pass_through_the_jump_host_over_one_connection_each(env: Env) -> None:
    """Config from TOML; the target is reached through the jump host (tunnel=)."""
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    secret = env.tmp / "lab.key"
    secret.write_text("not really a key\n")
    secret.chmod(0o600)
    toml = env.tmp / "inv.toml"
    toml.write_text(f"""
name = "ssh-checks"
[ssh.jump_host]
name = "bastion"
host = "127.0.0.1"
port = {env.jump_port}
user = "ops"
identity_file = "{env.key}"
host_key = "{env.jump_pinned}"

[[ssh.hosts]]
name = "edge-1"
host = "127.0.0.1"
port = {env.target_port}
user = "ops"
tunnel = "bastion"
identity_file = "{env.key}"
host_key = "{env.target_pinned}"
checks = [
  {{ kind = "service", name = "{MY_COMM}" }},
  {{ kind = "process", pattern = "^{MY_COMM}$" }},
  {{ kind = "port", port = {port} }},
  {{ kind = "file", path = "{secret}", mode = "0600" }},
  {{ kind = "disk", path = "{env.tmp}", min_free_percent = 0.5 }},
  {{ kind = "memory", min_available_percent = 1 }},
  {{ kind = "package", name = "bash", min_version = "4.0" }},
  {{ kind = "package", name = "coreutils" }},
]
""")
    cfg = load_config(toml).ssh
    jump_before, target_before = env.jump_stats.connections, env.target_stats.connections
    seen: list[CheckResult] = []
    try:
        reports = await check_hosts(cfg, timeout=10, on_result=seen.append)
    finally:
        listener.close()
    assert [r.host for r in reports] == ["bastion", "edge-1"]
    bastion, edge = reports
    assert bastion.reachable and bastion.status == "pass" and bastion.via == []
    assert edge.via == ["bastion"] and edge.reachable
    assert "via bastion" in edge.checks[0].evidence["detail"]
    checks = _by_name(edge)
    assert list(checks) == [
        "reachable", f"service:{MY_COMM}", f"process:^{MY_COMM}$", f"port:{port}",
        f"file:{secret}", f"disk:{env.tmp}", "memory", "package:bash", "package:coreutils"]
    failing = {n: c.evidence for n, c in checks.items() if c.status != "pass"}
    if HAS_SYSTEMD:  # pragma: no cover - this suite's hosts run without systemd
        failing.pop(f"service:{MY_COMM}", None)
    assert failing == {}
    assert edge.status == "pass"
    assert os.getpid() in checks[f"process:^{MY_COMM}$"].evidence["pids"]
    if not HAS_SYSTEMD:  # documented fallback: a process check on the unit's name
        service = checks[f"service:{MY_COMM}"].evidence
        assert service["init"] == "none" and os.getpid() in service["pids"]
        assert service["detail"].startswith("no systemd; process check:")
    assert checks[f"port:{port}"].evidence["addresses"] == [f"127.0.0.1:{port}"]
    assert checks[f"file:{secret}"].evidence["mode"] == "0600"
    assert 0 < checks[f"disk:{env.tmp}"].evidence["free_percent"] <= 100
    assert 0 < checks["memory"].evidence["available_percent"] <= 100
    assert checks["package:bash"].evidence["manager"] == "dpkg"
    assert deb_compare(checks["package:bash"].evidence["version"], "4.0") > 0
    assert all(c.duration_s >= 0 for c in edge.checks)
    # One connection per host: the jump host's own checks and the tunnel share one.
    assert env.jump_stats.connections - jump_before == 1
    assert env.target_stats.connections - target_before == 1
    assert ("127.0.0.1", env.target_port) in env.jump_stats.direct_tcpip
    assert next(c.name for c in seen if c.host == "edge-1") == "reachable"
    assert len(seen) == len(bastion.checks) + len(edge.checks)
    assert edge.as_json()["checks"][1]["status"] == "pass"
    assert edge.ok and edge.summary()["checks"]["package:bash"].startswith("pass: bash ")
    await async_wait_until(lambda: env.target_stats.active == env.jump_stats.active == 0,
                           5, "the checks' connections to close")


async def test_each_kind_fails_with_evidence(env: Env) -> None:
    loose = env.tmp / "loose.conf"
    loose.write_text("x")
    loose.chmod(0o644)
    closed = closed_port()
    host = env.host("edge-1", checks=[
        {"kind": "file", "path": str(env.tmp / "missing.conf")},
        {"kind": "file", "path": str(loose), "mode": "0600"},
        {"kind": "port", "port": closed},
        {"kind": "process", "pattern": "no-such-process-4f1c", "full": True},
        {"kind": "service", "name": "no-such-service-4f1c"},
        {"kind": "package", "name": "no-such-package-4f1c"},
        {"kind": "package", "name": "bash", "min_version": "999"},
        {"kind": "disk", "path": "/", "min_free_percent": 100},
        {"kind": "disk", "path": str(env.tmp / "nowhere"), "min_free_percent": 1},
        {"kind": "disk", "path": "/", "min_free_percent": 0, "warn_free_percent": 100},
        {"kind": "memory", "min_available_percent": 100},
    ])
    (report,) = await check_hosts(SshConfig(hosts=[host]), timeout=10)
    checks = _by_name(report)
    detail = {name: c.evidence["detail"] for name, c in checks.items()}
    status = {name: c.status for name, c in checks.items()}
    assert status.pop("reachable") == "pass"
    assert status.pop("disk:/") == "warn"  # the last of the two "disk:/" checks
    assert set(status.values()) == {"fail"}, status
    assert report.status == "fail" and not report.ok
    assert report.summary()["checks"][f"port:{closed}"].startswith("fail: nothing listens")
    assert detail[f"file:{env.tmp / 'missing.conf'}"].endswith("is missing")
    assert detail[f"file:{loose}"].endswith("has mode 0644, expected 0600")
    assert f"nothing listens on TCP port {closed}" in detail[f"port:{closed}"]
    # The pattern is in our own `sh -c` command line: it must not count as a match.
    assert detail["process:no-such-process-4f1c"] == "no process matches 'no-such-process-4f1c'"
    if not HAS_SYSTEMD:
        assert detail["service:no-such-service-4f1c"] == (
            "no systemd; process check: no process matches '^no-such-service$'")
    assert "no-such-package-4f1c is not installed (dpkg" in detail["package:no-such-package-4f1c"]
    assert "is older than 999" in detail["package:bash"]
    assert "df failed" in detail[f"disk:{env.tmp / 'nowhere'}"]
    assert "below 100% available" in detail["memory"]
    disk_checks = [c for c in report.checks if c.name == "disk:/"]
    assert [c.status for c in disk_checks] == ["fail", "warn"]
    assert "below 100% free" in disk_checks[0].evidence["detail"]
    assert "below warn 100%" in disk_checks[1].evidence["detail"]


async def test_unknown_host_key_is_refused_unless_pinned_and_nothing_runs(env: Env) -> None:
    empty = env.tmp / "empty_known_hosts"
    empty.write_text("")
    trusted = env.tmp / "known_hosts"
    trusted.write_text(f"[127.0.0.1]:{env.target_port} {env.target_pinned}\n")
    probe = [{"kind": "memory", "min_available_percent": 1}]
    cfg = SshConfig(
        jump_host=env.host("bastion", "jump", pin=False, known_hosts=empty),
        hosts=[
            env.host("unpinned", pin=False, known_hosts=empty, checks=probe),
            env.host("behind", tunnel="bastion", checks=probe),
            env.host("in-known-hosts", pin=False, known_hosts=trusted, checks=probe),
            SshHost(name="dead", host="127.0.0.1", port=closed_port(), checks=probe),
        ])
    commands_before = len(env.target_stats.commands)
    reports = {r.host: r for r in await check_hosts(cfg, timeout=5)}
    refused = "host key not trusted"
    assert refused in reports["bastion"].checks[0].evidence["detail"]
    unpinned = reports["unpinned"]
    assert not unpinned.reachable and unpinned.status == "fail"
    assert refused in unpinned.checks[0].evidence["detail"]
    assert "pin it with host_key" in unpinned.checks[0].evidence["detail"]
    assert unpinned.checks[1].status == "fail"
    assert unpinned.checks[1].evidence["detail"].startswith("not run: host unreachable: ssh "
                                                             "unpinned: host key not trusted")
    behind = reports["behind"].checks[0].evidence["detail"]
    assert behind.startswith("ssh behind: via jump host: ssh bastion: host key not trusted")
    assert "cannot connect: Connect call failed" in reports["dead"].checks[0].evidence[
        "detail"] or "Connection refused" in reports["dead"].checks[0].evidence["detail"]
    assert reports["in-known-hosts"].status == "pass"  # a known_hosts entry is trust too
    assert len(env.target_stats.commands) - commands_before == 1  # only in-known-hosts ran


async def test_a_hung_check_times_out_alone(env: Env) -> None:
    host = env.host("edge-1", checks=[
        {"kind": "disk", "path": "/", "min_free_percent": 1, "timeout": 1},
        {"kind": "memory", "min_available_percent": 1},
    ])
    env.target_stats.hang_on = "df -P"
    try:
        (report,) = await check_hosts(SshConfig(hosts=[host]), timeout=10)
    finally:
        env.target_stats.hang_on = None
    disk, memory = report.checks[1:]
    assert disk.status == "fail" and disk.evidence["detail"] == "timed out after 1s"
    assert 1 <= disk.duration_s < 5
    assert memory.status == "pass"


async def test_the_host_side_timeout_kills_the_remote_command(env: Env) -> None:
    """Closing the channel alone would leave a wedged command running on the host."""
    from opsconsole.systems.ssh.client import ConnectionPool

    cfg = SshConfig(hosts=[env.host("edge-1")])
    async with ConnectionPool(cfg) as pool:
        conn = await pool.get("edge-1")
        started = asyncio.get_running_loop().time()
        with pytest.raises(ssh_checks._CheckTimeout):
            await ssh_checks._exec(conn, ssh_checks._PREAMBLE + "sleep 41.5\n", 1)
        assert asyncio.get_running_loop().time() - started < 3
    left = subprocess.run(["pgrep", "-f", "^sleep 41.5$"], capture_output=True, text=True)
    assert left.stdout == ""


# --------------------------------------------------------------------------- forwards


# --------------------------------------------------------------------------- config


# --------------------------------------------------------------------------- parsers


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg to compare against")
def test_deb_compare_agrees_with_dpkg() -> None:
    pairs = [("1.0", "1.0"), ("1.0", "1.0-1"), ("1.0~rc1", "1.0"), ("1.0~~", "1.0~"),
             ("1:0.1", "9.9"), ("2.10", "2.9"), ("5.2.15-2+b8", "5.2"), ("1.0a", "1.0+"),
             ("1.0.0", "1.0"), ("0001.2", "1.2"), ("1.2-3", "1.2-10"), ("abc", "abd")]
    for a, b in pairs:
        ours = deb_compare(a, b)
        for op, want in (("lt", ours < 0), ("eq", ours == 0), ("gt", ours > 0)):
            rc = subprocess.run(["dpkg", "--compare-versions", a, op, b]).returncode
            assert (rc == 0) == want, (a, op, b)


def test_scripts_work_on_a_minimal_host_without_procps_awk_or_stat(tmp_path: Path) -> None:
    """Busybox-like images: no pgrep, awk, stat, ss or timeout; /proc does the work."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "tr", "cat", "grep", "ls", "head", "df"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    target = tmp_path / "f"
    target.write_text("")
    target.chmod(0o640)
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen()
        port = srv.getsockname()[1]
        cases = [
            ({"kind": "process", "pattern": f"^{MY_COMM}$"}, "pass"),
            ({"kind": "process", "pattern": "no-such-process-77", "full": True}, "fail"),
            ({"kind": "port", "port": port}, "pass"),
            ({"kind": "file", "path": str(target), "mode": "0640"}, "pass"),
            ({"kind": "file", "path": str(target), "mode": "0600"}, "fail"),
        ]
        for spec, want in cases:
            check = SshHost.model_validate({"name": "x", "host": "x", "checks": [spec]}).checks[0]
            command = ssh_checks.remote_command(ssh_checks._PREAMBLE + ssh_checks._script(check),
                                                5)
            done = subprocess.run([str(bin_dir / "sh"), "-c", command], capture_output=True,
                                  text=True, env={"PATH": str(bin_dir)}, timeout=20)
            status, evidence = ssh_checks.evaluate(check, done.returncode, done.stdout,
                                                   done.stderr)
            assert status == want, (spec, evidence, done.stderr)
            if spec["kind"] == "process" and want == "pass":
                assert os.getpid() in evidence["pids"]


async def test_the_console_probes_a_private_nats_node_through_its_forwards(
        env: Env, lab, tmp_path) -> None:
    """The inventory names 127.0.0.1:<local port>; the session opens the forwards through
    the jump host at start, the NATS probe sees the node healthy, stop closes them."""
    from opsconsole.config import Inventory
    from opsconsole.faults.ledger import FaultLedger
    from opsconsole.lab.ports import free_ports
    from opsconsole.session import ConsoleSession
    from opsconsole.systems.nats.config import NatsCluster, NatsNode

    node = lab.topology().central[0]
    client, monitor = free_ports(2)
    login = lab.nats_cluster(lab.topology())  # the secured lab: its CA, the console login
    scheme, web = ("tls", "https") if lab.ca_cert else ("nats", "http")
    inv = Inventory(
        name="via-bastion",
        nats=[NatsCluster(name="central", user=login.user, password=login.password,
                          ca_cert=login.ca_cert, nodes=[NatsNode(
            name="nats-a", client_url=f"{scheme}://127.0.0.1:{client}",
            monitor_url=f"{web}://127.0.0.1:{monitor}")])],
        ssh=SshConfig(jump_host=env.host("bastion", "jump"), forwards=[
            {"name": "nats-client", "host": "bastion", "remote_host": "127.0.0.1",
             "remote_port": node.client, "local_port": client},
            {"name": "nats-monitor", "host": "bastion", "remote_host": "127.0.0.1",
             "remote_port": node.monitor, "local_port": monitor}]))
    session = ConsoleSession(inv, canaries=False, ledger=FaultLedger(tmp_path / "l.jsonl"))
    await session.start()
    try:
        def healthy() -> bool:
            view = session.state.nats.nodes.get("nats-a")
            return bool(view and view.sample.reachable and view.sample.healthy)

        await async_wait_until(healthy, 15, "nats-a healthy through the forwards")
        assert any("ssh forward nats-monitor: 127.0.0.1:" in e.text
                   for e in session.state.timeline)
        assert ("127.0.0.1", node.monitor) in env.jump_stats.direct_tcpip
    finally:
        await session.stop()
    with pytest.raises(OSError):
        _r, w = await asyncio.open_connection("127.0.0.1", monitor)
        w.close()
