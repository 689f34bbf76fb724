"""Loopback port allocation and clash detection for lab nodes."""

from __future__ import annotations

import asyncio
import socket
import time

import psutil

from ..errors import UserError

LOOPBACK = "127.0.0.1"


def free_ports(count: int) -> list[int]:
    """Return ``count`` distinct ports that were free on 127.0.0.1 a moment ago.

    All sockets stay bound until every port is chosen, so the kernel never hands
    out the same port twice within one call.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_in_use(port: int) -> bool:
    """True when another socket holds 127.0.0.1:port.

    SO_REUSEADDR makes leftover TIME_WAIT connections of a stopped server not
    count: only a live listener (or bound socket) makes the port unusable.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return True
    return False


def ensure_free(ports: dict[str, int]) -> None:
    """Raise a one-line error (exit 2) naming the first port already taken."""
    for label, port in ports.items():
        if port_in_use(port):
            raise UserError(
                f"port clash: {LOOPBACK}:{port} ({label}) is already in use by another process",
                exit_code=2,
            )


def listening_ports() -> set[int]:
    """Ports with a socket in LISTEN state on this machine (from the kernel's table).

    Reading the table avoids connect()-probing, which can self-connect to a free
    port in the ephemeral range and report a listener that does not exist.
    """
    return {c.laddr.port for c in psutil.net_connections(kind="tcp")
            if c.status == psutil.CONN_LISTEN}


def listening(port: int) -> bool:
    """True when a server listens on ``port``."""
    return port in listening_ports()


async def wait_closed(ports: list[int], timeout: float) -> list[int]:
    """Wait until none of ``ports`` listens; return those still listening at the deadline.

    A killed multithreaded server can show as a zombie a moment before its last
    thread has closed its sockets, so "process gone" does not yet mean "port free".
    The kernel's table is read in a thread (it grows with every socket on the host).
    """
    deadline = time.monotonic() + timeout
    while True:
        still = sorted(set(ports) & await asyncio.to_thread(listening_ports))
        if not still or time.monotonic() >= deadline:
            return still
        await asyncio.sleep(0.02)
