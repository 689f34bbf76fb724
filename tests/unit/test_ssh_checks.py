"""SSH host checks and port forwards that run no remote command: connect timeouts, the
forwards through a jump host, config errors, the ledger round trip and the parsers (two
in-process asyncssh servers on loopback; no process is started)."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest

from opsconsole.config import check_config
from opsconsole.errors import UserError
from opsconsole.systems.ssh.checks import (
    check_hosts,
    listening,
    mode_from_ls,
    rpm_compare,
)
from opsconsole.systems.ssh.config import SshConfig, SshHost
from opsconsole.systems.ssh.forward import open_forwards

from ..helpers import async_wait_until
from ..ssh_servers import Env, closed_port, ssh_env


@pytest.fixture(scope="module")
async def env(tmp_path_factory: pytest.TempPathFactory):
    async with ssh_env(tmp_path_factory.mktemp("ssh-checks")) as e:
        yield e


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            writer.write(data)
            await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


# --------------------------------------------------------------------------- checks


async def test_a_silent_host_times_out_at_connect() -> None:
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    host = SshHost.model_validate({
        "name": "silent", "host": "127.0.0.1", "port": silent.sockets[0].getsockname()[1],
        "checks": [{"kind": "memory", "min_available_percent": 1}]})
    try:
        (report,) = await check_hosts(SshConfig(hosts=[host]), timeout=1)
    finally:
        silent.close()
    assert [c.status for c in report.checks] == ["fail", "fail"]
    assert report.checks[0].evidence["detail"] == "ssh silent: cannot connect: timed out after 1s"
    assert report.duration_s < 3


# --------------------------------------------------------------------------- forwards


async def test_forwards_reach_a_private_endpoint_through_the_jump_host(env: Env) -> None:
    echo = await _echo_server()
    echo_port = echo.sockets[0].getsockname()[1]
    cfg = SshConfig(
        jump_host=env.host("bastion", "jump"),
        hosts=[env.host("edge-1", tunnel="bastion")],
        forwards=[
            {"name": "nats", "host": "bastion", "remote_host": "127.0.0.1",
             "remote_port": echo_port},
            {"name": "vault", "host": "edge-1", "remote_host": "127.0.0.1",
             "remote_port": echo_port},
        ])
    try:
        async with open_forwards(cfg, timeout=5) as bound:
            assert set(bound) == {"nats", "vault"}
            for fwd in bound.values():
                assert fwd.local_host == "127.0.0.1" and fwd.local_port > 0
                reader, writer = await asyncio.open_connection("127.0.0.1", fwd.local_port)
                writer.write(f"ping {fwd.name}\n".encode())
                line = await asyncio.wait_for(reader.readline(), 5)
                assert line == f"ping {fwd.name}\n".encode()
                writer.close()
            assert ("127.0.0.1", echo_port) in env.jump_stats.direct_tcpip
            assert ("127.0.0.1", echo_port) in env.target_stats.direct_tcpip
            ports = [f.local_port for f in bound.values()]
        for local in ports:  # listeners are gone after the context
            with pytest.raises(OSError):
                _r, w = await asyncio.open_connection("127.0.0.1", local)
                w.close()
        await async_wait_until(lambda: env.target_stats.active == env.jump_stats.active == 0,
                               5, "the forwards' ssh connections to close")
    finally:
        echo.close()


async def test_forward_errors_name_the_forward(env: Env) -> None:
    closed = closed_port()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    cfg = SshConfig(
        jump_host=env.host("bastion", "jump"),
        forwards=[
            {"name": "refused", "host": "bastion", "remote_host": "127.0.0.1",
             "remote_port": closed},
            {"name": "busy", "host": "bastion", "remote_host": "127.0.0.1",
             "remote_port": closed, "local_port": taken.getsockname()[1]},
        ])
    try:
        with pytest.raises(UserError, match=r"ssh forward refused: 127\.0\.0\.1:\d+ not "
                                            r"reachable from bastion"):
            async with open_forwards(cfg, ["refused"]):
                pass
        with pytest.raises(UserError, match=r"ssh forward busy: cannot listen on "
                                            r"127\.0\.0\.1:\d+: .*in use"):
            async with open_forwards(cfg, ["busy"], verify=False):
                pass
        with pytest.raises(UserError, match="no forward named 'nope'"):
            async with open_forwards(cfg, ["nope"]):
                pass
    finally:
        taken.close()
    empty = env.tmp / "empty_known_hosts"
    empty.write_text("")
    unpinned = SshConfig(jump_host=env.host("bastion", "jump", pin=False, known_hosts=empty),
                         forwards=cfg.forwards[:1])
    with pytest.raises(UserError, match="ssh forward refused: ssh bastion: host key not "
                                        "trusted"):
        async with open_forwards(unpinned):
            pass
    missing = unpinned.model_copy(update={"jump_host": env.host(
        "bastion", "jump", pin=False, known_hosts=env.tmp / "no_such_known_hosts")})
    with pytest.raises(UserError, match=r"ssh bastion: cannot read .*no_such_known_hosts: "
                                        r"No such file"):
        async with open_forwards(missing):
            pass


# --------------------------------------------------------------------------- config


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("""
name = "t"
[ssh.jump_host]
name = "bastion"
host = "10.0.0.1"
[[ssh.hosts]]
name = "a"
host = "10.0.0.2"
checks = [
  { kind = "service", name = "nats; reboot" },
  { kind = "port", port = 0 },
  { kind = "file", path = "etc/nats.conf", mode = 0o600 },
  { kind = "disk", min_free_percent = 150 },
  { kind = "package", name = "bash", min_version = "$(id)" },
  { kind = "process", pattern = "a\\nb" },
  { kind = "reboot" },
  { kind = "memory", min_available_percent = 10, warn_available_percent = 5 },
]
""")
    found = [p.split(": ", 1)[1] for p in check_config(path)]
    assert found == [
        "ssh.hosts[0].checks[0].name: must be a systemd unit name (letters, digits, '@', '_', "
        "'.', ':', '\\', '-'; not starting with a symbol)",
        "ssh.hosts[0].checks[1].port: Input should be greater than or equal to 1",
        "ssh.hosts[0].checks[2].path: must be an absolute path on the host",
        'ssh.hosts[0].checks[2].mode: must be an octal mode string such as "0600" (quoted)',
        "ssh.hosts[0].checks[3].min_free_percent: Input should be less than or equal to 100",
        "ssh.hosts[0].checks[4].min_version: must be a package version such as 2.10 or 1:5.2-1",
        "ssh.hosts[0].checks[5].pattern: must be 1-256 characters without control characters",
        "ssh.hosts[0].checks[6]: kind must be one of service, process, port, file, disk, "
        "memory, package",
        "ssh.hosts[0].checks[7]: warn_available_percent must be >= min_available_percent",
    ]
    path.write_text("""
name = "t"
[[ssh.hosts]]
name = "a"
host = "10.0.0.2"
[[ssh.forwards]]
name = "vault"
host = "bastoin"
remote_host = "10.0.2.20"
remote_port = 8200
[[ssh.forwards]]
name = "vault"
host = "a"
remote_host = "10.0.2.20"
remote_port = 70000
""")
    assert [p.split(": ", 1)[1] for p in check_config(path)] == [
        "ssh.forwards[1].remote_port: Input should be less than or equal to 65535"]
    path.write_text(path.read_text().replace("70000", "8200"))
    assert [p.split(": ", 1)[1] for p in check_config(path)] == [
        "ssh: forwards[0].host: 'bastoin' is not a defined ssh host or the jump host; "
        "forwards[1].name: duplicate forward name 'vault'"]


def test_checks_survive_the_fault_ledger_round_trip(tmp_path: Path) -> None:
    """ssh faults store ``ssh.model_dump(mode="json")`` and validate it back."""
    cfg = SshConfig(hosts=[SshHost.model_validate({
        "name": "a", "host": "h", "checks": [
            {"kind": "file", "path": "/etc/x", "mode": "600"},
            {"kind": "disk", "min_free_percent": 10, "timeout": 3}]})],
        forwards=[{"name": "f", "host": "a", "remote_host": "10.0.0.1", "remote_port": 1}])
    assert cfg.hosts[0].checks[0].mode == "0600"
    assert cfg.hosts[0].checks[1].path == "/"
    assert SshConfig.model_validate(cfg.model_dump(mode="json")) == cfg


# --------------------------------------------------------------------------- parsers


def test_rpm_compare_known_cases() -> None:
    cases = [("1.0", "1.0", 0), ("1.0", "2.0", -1), ("2.0.1", "2.0", 1), ("1.0a", "1.0", 1),
             ("1.0~rc1", "1.0", -1), ("1.0^git1", "1.0", 1), ("1.0^git1", "1.0.1", -1),
             ("5.5p1", "5.5p10", -1), ("xyz10", "xyz10.1", -1), ("a", "1", -1),
             ("2_0", "2.0", 0), ("1:1.0-1", "2.0", 1), ("(none):2.0-3.el9", "2.0-10", -1),
             ("(none):2.0-3.el9", "2.0", 0)]
    for a, b, want in cases:
        assert rpm_compare(a, b) == want, (a, b)


def test_listening_parsers_and_ls_modes() -> None:
    proc = ("source=proc\n0100007F:1F90\n00000000000000000000000000000000:0016\n"
            "0000000000000000FFFF00000100007F:1F91\n")
    assert listening(proc) == ("proc", [("127.0.0.1", 8080), ("::", 22), ("127.0.0.1", 8081)])
    ss = ("source=ss\nState Recv-Q Send-Q Local Address:Port Peer Address:Port\n"
          "LISTEN 0 4096 127.0.0.53%lo:53 0.0.0.0:*\nLISTEN 0 128 [::]:22 [::]:*\n"
          "LISTEN 0 128 *:80 *:*\n")
    assert listening(ss) == ("ss", [("127.0.0.53", 53), ("::", 22), ("*", 80)])
    netstat = ("source=netstat\nActive Internet connections (only servers)\n"
               "tcp 0 0 0.0.0.0:4222 0.0.0.0:* LISTEN\ntcp6 0 0 :::8200 :::* LISTEN\n")
    assert listening(netstat) == ("netstat", [("0.0.0.0", 4222), ("::", 8200)])
    assert mode_from_ls("-rw-------") == 0o600
    assert mode_from_ls("drwxrwxrwt.") == 0o1777
    assert mode_from_ls("-rwsr-S---+") == 0o6740


