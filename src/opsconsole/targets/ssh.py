"""SSH adapter (asyncssh): ~/.ssh/config, the agent, known_hosts verified, jump hosts.

Unknown host keys are refused unless the inventory pins the key (``host_key``).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncssh

from ..config import SshConfig, SshHost
from ..errors import UserError

CONNECT_TIMEOUT_S = 10.0


@dataclass
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str


def find_host(cfg: SshConfig, name: str) -> SshHost:
    if cfg.jump_host is not None and cfg.jump_host.name == name:
        return cfg.jump_host
    for host in cfg.hosts:
        if host.name == name:
            return host
    raise UserError(f"ssh: no host named {name!r} in the inventory")


def _options(host: SshHost, cfg: SshConfig) -> dict[str, object]:
    opts: dict[str, object] = {"port": host.port, "connect_timeout": CONNECT_TIMEOUT_S}
    if host.user:
        opts["username"] = host.user
    if host.host_key:
        opts["known_hosts"] = ([asyncssh.import_public_key(host.host_key)], [], [])
    elif host.known_hosts:
        opts["known_hosts"] = str(host.known_hosts)
    if host.identity_file:
        opts["client_keys"] = [str(host.identity_file)]
    if cfg.config_file:
        opts["config"] = [str(cfg.config_file)]
    return opts


@contextlib.asynccontextmanager
async def connect(host: SshHost, cfg: SshConfig) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """Connect to ``host``, through its ``tunnel`` (recursively) when it has one."""
    async with contextlib.AsyncExitStack() as stack:
        tunnel = None
        if host.tunnel:
            tunnel = await stack.enter_async_context(connect(find_host(cfg, host.tunnel), cfg))
        try:
            conn = await asyncssh.connect(host.host, tunnel=tunnel, **_options(host, cfg))
        except asyncssh.HostKeyNotVerifiable as exc:
            raise UserError(f"ssh {host.name}: host key not trusted ({exc.reason}); pin it "
                            "with host_key or add it to known_hosts", exit_code=2) from exc
        except asyncssh.Error as exc:
            raise UserError(f"ssh {host.name}: {exc.reason}", exit_code=2) from exc
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise UserError(f"ssh {host.name}: cannot connect: {reason}", exit_code=2) from exc
        stack.push_async_callback(_close, conn)
        yield conn


async def _close(conn: asyncssh.SSHClientConnection) -> None:
    conn.close()
    await conn.wait_closed()


async def run(host: SshHost, cfg: SshConfig, command: str, timeout: float = 30.0) -> CommandResult:
    async with connect(host, cfg) as conn:
        result = await conn.run(command, check=False, timeout=timeout)
    return CommandResult(int(result.exit_status or 0), str(result.stdout or ""),
                         str(result.stderr or ""))
