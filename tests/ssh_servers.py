"""Real SSH servers for tests: asyncssh on loopback with a pinned host key, accepting one
client key, running each command with a real shell (optionally inside a network namespace).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncssh

from opsconsole.systems.ssh.config import SshHost


@dataclass
class Stats:
    connections: int = 0
    active: int = 0
    commands: list[str] = field(default_factory=list)
    direct_tcpip: list[tuple[str, int]] = field(default_factory=list)
    hang_on: str | None = None  # commands containing this never answer (a wedged host)


class _Server(asyncssh.SSHServer):
    def __init__(self, allowed: asyncssh.SSHKey, stats: Stats) -> None:
        self.allowed, self.stats = allowed, stats

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.stats.connections += 1
        self.stats.active += 1

    def connection_lost(self, exc: Exception | None) -> None:
        self.stats.active -= 1

    def begin_auth(self, username: str) -> bool:
        return True

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return key.public_data == self.allowed.public_data

    def connection_requested(self, dest_host: str, dest_port: int, orig_host: str,
                             orig_port: int) -> bool:
        self.stats.direct_tcpip.append((dest_host, dest_port))
        return True  # what `tunnel=` and local forwards need (sshd's AllowTcpForwarding)


def _handler(stats: Stats, netns: str | None):
    async def handle(process: asyncssh.SSHServerProcess) -> None:
        stats.commands.append(process.command)
        if stats.hang_on and stats.hang_on in process.command:
            await process.wait_closed()  # until the client gives up and closes the channel
            return
        argv = ["sh", "-c", process.command]
        if netns is not None:
            argv = ["ip", "netns", "exec", netns, *argv]
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await proc.communicate()
        try:
            process.stdout.write(out.decode(errors="replace"))
            process.stderr.write(err.decode(errors="replace"))
            process.exit(proc.returncode or 0)
        except (BrokenPipeError, asyncssh.Error):  # the client closed the channel first
            pass

    return handle


def write_client_key(directory: Path) -> tuple[asyncssh.SSHKey, Path]:
    """A fresh Ed25519 client key, written 0600 as ``directory/id_ed25519``."""
    key = asyncssh.generate_private_key("ssh-ed25519")
    path = directory / "id_ed25519"
    key.write_private_key(str(path))
    os.chmod(path, 0o600)
    return key, path


@dataclass
class SshServer:
    server: asyncssh.SSHAcceptor
    port: int
    pinned: str  # the host key as an OpenSSH public key line, for `host_key =`
    stats: Stats

    async def close(self) -> None:
        self.server.close()
        await self.server.wait_closed()


async def start_server(client_key: asyncssh.SSHKey, netns: str | None = None) -> SshServer:
    """An SSH server on 127.0.0.1 (a free port) that accepts ``client_key`` only."""
    stats = Stats()
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    server = await asyncssh.create_server(
        lambda: _Server(client_key, stats), "127.0.0.1", 0, server_host_keys=[host_key],
        process_factory=_handler(stats, netns))
    return SshServer(server, server.sockets[0].getsockname()[1],
                     host_key.export_public_key().decode().strip(), stats)


@dataclass
class Env:
    """A target SSH server and a jump host, both pinned, accepting one client key."""

    key: Path
    target_port: int
    target_pinned: str
    target_stats: Stats
    jump_port: int
    jump_pinned: str
    jump_stats: Stats
    tmp: Path

    def host(self, name: str, which: str = "target", *, tunnel: str | None = None,
             pin: bool = True, **extra: object) -> SshHost:
        port, pinned = ((self.target_port, self.target_pinned) if which == "target"
                        else (self.jump_port, self.jump_pinned))
        return SshHost.model_validate({
            "name": name, "host": "127.0.0.1", "port": port, "user": "ops",
            "identity_file": self.key, "tunnel": tunnel,
            "host_key": pinned if pin else None, **extra})


@contextlib.asynccontextmanager
async def ssh_env(tmp: Path) -> AsyncIterator[Env]:
    """Start the target and the jump host for the block; both are closed after it."""
    client_key, key_path = write_client_key(tmp)
    target, jump = await start_server(client_key), await start_server(client_key)
    try:
        yield Env(key_path, target.port, target.pinned, target.stats, jump.port, jump.pinned,
                  jump.stats, tmp)
    finally:
        await target.close()
        await jump.close()


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
