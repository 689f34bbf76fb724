"""SSH adapter (asyncssh): ~/.ssh/config, the agent, known_hosts verified, jump hosts.

Unknown host keys are refused unless the inventory pins the key (``host_key``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncssh

from ...core.tasks import cancel_and_wait
from ...errors import UserError
from .config import SshConfig, SshHost

CONNECT_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 5.0


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


def _options(host: SshHost, cfg: SshConfig,
             connect_timeout: float = CONNECT_TIMEOUT_S) -> dict[str, object]:
    opts: dict[str, object] = {"connect_timeout": connect_timeout}
    if host.port is not None:  # else ~/.ssh/config's Port, else 22 (as ssh does)
        opts["port"] = host.port
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


async def open_connection(
    host: SshHost, cfg: SshConfig, tunnel: asyncssh.SSHClientConnection | None = None,
    connect_timeout: float = CONNECT_TIMEOUT_S,
) -> asyncssh.SSHClientConnection:
    """One connection to ``host`` (over ``tunnel`` if given); every failure is a one-line
    :class:`UserError` (exit code 2) starting ``ssh <name>:``."""
    try:
        options = _options(host, cfg, connect_timeout)
    except asyncssh.KeyImportError as exc:
        raise UserError(f"ssh {host.name}: host_key is not a usable public key ({exc})",
                        exit_code=2) from exc
    try:
        return await asyncssh.connect(host.host, tunnel=tunnel, **options)
    except asyncssh.HostKeyNotVerifiable as exc:
        raise UserError(f"ssh {host.name}: host key not trusted ({exc.reason}); pin it "
                        "with host_key or add it to known_hosts", exit_code=2) from exc
    except asyncssh.Error as exc:
        raise UserError(f"ssh {host.name}: {exc.reason}", exit_code=2) from exc
    except TimeoutError as exc:  # before OSError: TimeoutError is one
        raise UserError(f"ssh {host.name}: cannot connect: timed out after "
                        f"{connect_timeout:g}s", exit_code=2) from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if exc.filename:  # a local file from the config: known_hosts, identity_file, ...
            raise UserError(f"ssh {host.name}: cannot read {exc.filename}: {reason}",
                            exit_code=2) from exc
        raise UserError(f"ssh {host.name}: cannot connect: {reason}", exit_code=2) from exc
    except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
        # The message names the problem (e.g. "Passphrase must be specified"), never the key.
        raise UserError(f"ssh {host.name}: cannot load client key: {exc}", exit_code=2) from exc
    except asyncssh.ConfigParseError as exc:
        raise UserError(f"ssh {host.name}: ssh config: {exc}", exit_code=2) from exc


@contextlib.asynccontextmanager
async def connect(host: SshHost, cfg: SshConfig) -> AsyncIterator[asyncssh.SSHClientConnection]:
    """Connect to ``host``, through its ``tunnel`` (recursively) when it has one."""
    async with contextlib.AsyncExitStack() as stack:
        tunnel = None
        if host.tunnel:
            tunnel = await stack.enter_async_context(connect(find_host(cfg, host.tunnel), cfg))
        conn = await open_connection(host, cfg, tunnel)
        stack.push_async_callback(_close, conn)
        yield conn


class ConnectionPool:
    """At most one connection per host for the pool's lifetime; jump hosts are shared.

    ``get`` is safe to call concurrently: the first caller connects, the others wait for
    the same attempt, and a failure is remembered (each ``get`` re-raises its UserError).
    """

    def __init__(self, cfg: SshConfig, connect_timeout: float = CONNECT_TIMEOUT_S) -> None:
        self.cfg = cfg
        self.connect_timeout = connect_timeout
        self._tasks: dict[str, asyncio.Task[asyncssh.SSHClientConnection]] = {}
        self._opened: list[asyncssh.SSHClientConnection] = []  # in connect order

    async def get(self, name: str) -> asyncssh.SSHClientConnection:
        if name not in self._tasks:
            host, seen = find_host(self.cfg, name), {name}
            hop = host.tunnel
            while hop:  # a loop would make the connect tasks wait on each other forever
                if hop in seen:
                    raise UserError(f"ssh {name}: tunnel chain loops back on itself")
                seen.add(hop)
                hop = find_host(self.cfg, hop).tunnel
            self._tasks[name] = asyncio.ensure_future(self._open(host))
        return await asyncio.shield(self._tasks[name])

    async def _open(self, host: SshHost) -> asyncssh.SSHClientConnection:
        tunnel = None
        if host.tunnel:
            try:
                tunnel = await self.get(host.tunnel)
            except UserError as exc:
                raise UserError(f"ssh {host.name}: via jump host: {exc}", exit_code=2) from None
        conn = await open_connection(host, self.cfg, tunnel, self.connect_timeout)
        self._opened.append(conn)
        return conn

    async def aclose(self) -> None:
        await cancel_and_wait(self._tasks.values())
        for conn in reversed(self._opened):  # tunnelled connections before their tunnels
            try:
                await asyncio.wait_for(_close(conn), CLOSE_TIMEOUT_S)
            except TimeoutError:  # a dead peer must not hang the caller
                conn.abort()
        self._tasks.clear()
        self._opened.clear()

    async def __aenter__(self) -> ConnectionPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


async def _close(conn: asyncssh.SSHClientConnection) -> None:
    conn.close()
    await conn.wait_closed()


async def run(host: SshHost, cfg: SshConfig, command: str, timeout: float = 30.0) -> CommandResult:
    async with connect(host, cfg) as conn:
        result = await conn.run(command, check=False, timeout=timeout)
    return CommandResult(int(result.exit_status or 0), str(result.stdout or ""),
                         str(result.stderr or ""))
