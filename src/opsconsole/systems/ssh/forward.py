"""Local port forwards over SSH (``[[ssh.forwards]]``), so the console reaches private
NATS/Vault endpoints at ``127.0.0.1:<port>``.

Each forward listens on loopback only and is carried by the connection to its ``host``
(itself through that host's jump host, when it has one); forwards through the same host
share one connection. Leaving the context closes the listeners, then the connections.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass

import asyncssh

from ...errors import UserError
from .client import CLOSE_TIMEOUT_S, ConnectionPool
from .config import SshConfig, SshForward

LOCAL_HOST = "127.0.0.1"


@dataclass(frozen=True)
class BoundForward:
    name: str
    host: str  # the ssh host carrying the forward
    remote_host: str
    remote_port: int
    local_port: int  # the port actually bound (the configured one, or a free one for 0)
    local_host: str = LOCAL_HOST

    @property
    def address(self) -> str:
        return f"{self.local_host}:{self.local_port}"


def _select(cfg: SshConfig, names: Iterable[str] | None) -> list[SshForward]:
    if names is None:
        return list(cfg.forwards)
    by_name = {f.name: f for f in cfg.forwards}
    wanted = list(names)
    unknown = [n for n in wanted if n not in by_name]
    if unknown:
        known = ", ".join(sorted(by_name)) or "none"
        raise UserError(f"ssh forwards: no forward named {', '.join(map(repr, unknown))} "
                        f"(defined: {known})")
    return [by_name[n] for n in wanted]


async def _verify(conn: asyncssh.SSHClientConnection, fwd: SshForward, timeout: float) -> None:
    """Open (and close) one channel to the destination, so an unreachable endpoint is
    reported now with the host's reason instead of as a reset on first use."""
    try:
        _reader, writer = await asyncio.wait_for(
            conn.open_connection(fwd.remote_host, fwd.remote_port), timeout)
    except asyncssh.ChannelOpenError as exc:
        raise UserError(f"ssh forward {fwd.name}: {fwd.remote_host}:{fwd.remote_port} not "
                        f"reachable from {fwd.host}: {exc.reason}", exit_code=2) from None
    except TimeoutError:
        raise UserError(f"ssh forward {fwd.name}: {fwd.remote_host}:{fwd.remote_port}: no "
                        f"answer from {fwd.host} within {timeout:g}s", exit_code=2) from None
    writer.close()


@contextlib.asynccontextmanager
async def open_forwards(
    cfg: SshConfig, names: Iterable[str] | None = None, *, timeout: float = 10,
    verify: bool = True,
) -> AsyncIterator[dict[str, BoundForward]]:
    """Open the configured forwards (all, or ``names``) and yield ``{name: BoundForward}``.

    Raises :class:`UserError` (exit code 2) naming the forward when a host is unreachable,
    the local port is taken, or (``verify``) the destination refuses a test connection;
    whatever was opened by then is closed again.
    """
    forwards = _select(cfg, names)
    async with ConnectionPool(cfg, connect_timeout=timeout) as pool:
        # Connect every carrying host at once; errors are re-raised per forward below.
        await asyncio.gather(*(pool.get(h) for h in {f.host for f in forwards}),
                             return_exceptions=True)
        listeners: list[asyncssh.SSHListener] = []
        try:
            bound: dict[str, BoundForward] = {}
            for fwd in forwards:
                try:
                    conn = await pool.get(fwd.host)
                except UserError as exc:
                    raise UserError(f"ssh forward {fwd.name}: {exc}", exit_code=2) from None
                if verify:
                    await _verify(conn, fwd, timeout)
                try:
                    listener = await conn.forward_local_port(
                        LOCAL_HOST, fwd.local_port, fwd.remote_host, fwd.remote_port)
                except OSError as exc:
                    reason = exc.strerror or type(exc).__name__
                    raise UserError(f"ssh forward {fwd.name}: cannot listen on "
                                    f"{LOCAL_HOST}:{fwd.local_port}: {reason}",
                                    exit_code=2) from None
                listeners.append(listener)
                bound[fwd.name] = BoundForward(fwd.name, fwd.host, fwd.remote_host,
                                               fwd.remote_port, listener.get_port())
            yield bound
        finally:
            for listener in reversed(listeners):
                listener.close()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(listener.wait_closed(), CLOSE_TIMEOUT_S)


__all__ = ["LOCAL_HOST", "BoundForward", "open_forwards"]
