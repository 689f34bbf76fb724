"""Asyncio TCP fault proxy: one listener per lab link, faults switchable at run time.

Faults on a link (all both ways):
- ``cut``: bytes are dropped, connections stay open (like a firewall DROP); when the
  cut heals, connections that lived through it are reset so both ends reconnect on
  a clean stream instead of resuming a corrupted one.
- ``reset``: every connection (current and new) is reset (RST) while active.
- ``latency_ms`` ± ``jitter_ms``: each chunk is delivered that much later, order kept.
- ``bandwidth_bps``: a token bucket caps bytes per second per direction.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import time
from dataclasses import asdict, dataclass, field
from typing import Any

CHUNK = 64 * 1024


@dataclass
class LinkFault:
    cut: bool = False
    reset: bool = False
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_bps: float = 0.0

    @classmethod
    def parse(cls, data: dict[str, Any]) -> LinkFault:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        fault = cls(**data)
        if min(fault.latency_ms, fault.jitter_ms, fault.bandwidth_bps) < 0:
            raise ValueError("fault values must not be negative")
        if fault.jitter_ms > fault.latency_ms:
            raise ValueError("jitter_ms must not exceed latency_ms")
        return fault

    @property
    def active(self) -> bool:
        return self != LinkFault()


@dataclass
class Link:
    name: str
    listen: int
    upstream_host: str
    upstream_port: int
    fault: LinkFault = field(default_factory=LinkFault)
    conns: set[Conn] = field(default_factory=set)
    accepted: int = 0
    bytes_up: int = 0
    bytes_down: int = 0
    dropped: int = 0

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "listen": self.listen,
                "upstream": f"{self.upstream_host}:{self.upstream_port}",
                "fault": asdict(self.fault) if self.fault.active else None,
                "connections": len(self.conns), "accepted": self.accepted,
                "bytes_up": self.bytes_up, "bytes_down": self.bytes_down,
                "bytes_dropped": self.dropped}


def _rst(writer: asyncio.StreamWriter) -> None:
    """Close with RST (SO_LINGER 0), not FIN: the peer sees a reset connection."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class Conn:
    """One proxied connection: two pumps, each reader → delay queue → writer."""

    def __init__(self, link: Link, client: tuple[asyncio.StreamReader, asyncio.StreamWriter],
                 upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter]) -> None:
        self.link = link
        self.client = client
        self.upstream = upstream
        self.lived_through_cut = False
        self.tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self.tasks = [asyncio.create_task(self._pump(self.client[0], self.upstream[1], True)),
                      asyncio.create_task(self._pump(self.upstream[0], self.client[1], False))]

    def reset(self) -> None:
        for _, writer in (self.client, self.upstream):
            _rst(writer)
        for task in self.tasks:
            task.cancel()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    up: bool) -> None:
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
        sender = asyncio.create_task(self._deliver(queue, writer))
        last_due = 0.0
        try:
            while True:
                data = await reader.read(CHUNK)
                if not data:
                    break
                fault = self.link.fault
                if fault.reset:
                    self.reset()
                    return
                if fault.cut:
                    self.lived_through_cut = True
                    self.link.dropped += len(data)
                    continue
                if up:
                    self.link.bytes_up += len(data)
                else:
                    self.link.bytes_down += len(data)
                delay = 0.0
                if fault.latency_ms:
                    delay = (fault.latency_ms + random.uniform(-fault.jitter_ms,
                                                               fault.jitter_ms)) / 1000
                if fault.bandwidth_bps:
                    delay += len(data) / fault.bandwidth_bps
                due = max(last_due, time.monotonic() + delay)
                last_due = due
                await queue.put((due, data))
        except (ConnectionError, OSError):
            pass
        finally:
            await queue.put(None)
            with contextlib.suppress(Exception):
                await sender

    async def _deliver(self, queue: asyncio.Queue[tuple[float, bytes] | None],
                       writer: asyncio.StreamWriter) -> None:
        try:
            while (item := await queue.get()) is not None:
                due, data = item
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError, RuntimeError):
            pass


class FaultProxy:
    def __init__(self, links: list[Link]) -> None:
        self.links = {link.name: link for link in links}
        self._servers: list[asyncio.base_events.Server] = []

    async def start(self) -> None:
        for link in self.links.values():
            server = await asyncio.start_server(
                lambda r, w, link=link: self._accept(link, r, w), "127.0.0.1", link.listen,
                reuse_address=True)
            self._servers.append(server)

    async def stop(self) -> None:
        for server in self._servers:
            server.close()
        for link in self.links.values():
            for conn in list(link.conns):
                conn.reset()

    async def _accept(self, link: Link, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        link.accepted += 1
        if link.fault.reset:
            _rst(writer)
            return
        try:
            upstream = await asyncio.wait_for(
                asyncio.open_connection(link.upstream_host, link.upstream_port), timeout=5)
        except (OSError, TimeoutError):
            _rst(writer)  # upstream down: the client sees what a direct dial would
            return
        conn = Conn(link, (reader, writer), upstream)
        conn.lived_through_cut = link.fault.cut
        link.conns.add(conn)
        conn.start()
        try:
            await asyncio.gather(*conn.tasks, return_exceptions=True)
        finally:
            link.conns.discard(conn)
            for _, w in (conn.client, conn.upstream):
                with contextlib.suppress(Exception):
                    w.close()

    def set_fault(self, name: str, fault: LinkFault) -> None:
        link = self.links[name]
        was_cut = link.fault.cut
        link.fault = fault
        if fault.cut and not was_cut:
            for conn in link.conns:
                conn.lived_through_cut = True
        if fault.reset:
            for conn in list(link.conns):
                conn.reset()
        if was_cut and not fault.cut:
            for conn in list(link.conns):
                if conn.lived_through_cut:
                    conn.reset()
