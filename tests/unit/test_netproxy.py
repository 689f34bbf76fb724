"""The fault proxy against a real echo server on loopback."""

from __future__ import annotations

import asyncio
import time

import pytest

from opsconsole.lab.ports import free_ports
from opsconsole.netproxy.proxy import FaultProxy, Link, LinkFault


@pytest.fixture
async def proxied_echo():
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    upstream = server.sockets[0].getsockname()[1]
    listen = free_ports(1)[0]
    proxy = FaultProxy([Link("echo", listen, "127.0.0.1", upstream)])
    await proxy.start()
    yield proxy, listen
    await proxy.stop()
    server.close()


async def _roundtrip(reader, writer, payload: bytes, timeout: float = 2.0) -> bytes:
    writer.write(payload)
    await writer.drain()
    return await asyncio.wait_for(reader.readexactly(len(payload)), timeout)


async def test_passes_bytes_through(proxied_echo) -> None:
    proxy, port = proxied_echo
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await _roundtrip(reader, writer, b"hello") == b"hello"
    assert proxy.links["echo"].bytes_up >= 5
    writer.close()


async def test_cut_drops_both_ways_then_heal_resets(proxied_echo) -> None:
    proxy, port = proxied_echo
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await _roundtrip(reader, writer, b"before") == b"before"
    proxy.set_fault("echo", LinkFault(cut=True))
    with pytest.raises(TimeoutError):
        await _roundtrip(reader, writer, b"during", timeout=0.5)
    assert proxy.links["echo"].dropped >= len(b"during")
    proxy.set_fault("echo", LinkFault())
    # The connection lived through the cut: it is reset rather than resumed corrupted.
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(reader, writer, b"after", timeout=2)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await _roundtrip(reader, writer, b"fresh") == b"fresh"
    writer.close()


async def test_latency_delays_every_chunk(proxied_echo) -> None:
    proxy, port = proxied_echo
    proxy.set_fault("echo", LinkFault(latency_ms=150))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    assert await _roundtrip(reader, writer, b"slow", timeout=5) == b"slow"
    assert time.monotonic() - started >= 0.3  # 150 ms each way
    writer.close()


async def test_bandwidth_caps_throughput(proxied_echo) -> None:
    proxy, port = proxied_echo
    proxy.set_fault("echo", LinkFault(bandwidth_bps=100_000))
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    started = time.monotonic()
    payload = b"x" * 50_000
    assert await _roundtrip(reader, writer, payload, timeout=10) == payload
    assert time.monotonic() - started >= 0.9  # 50 kB up and 50 kB down at 100 kB/s
    writer.close()


async def test_reset_kills_connections_while_active(proxied_echo) -> None:
    proxy, port = proxied_echo
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    proxy.set_fault("echo", LinkFault(reset=True))
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(reader, writer, b"x")
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
        await _roundtrip(reader, writer, b"y")


def test_bad_fault_values_are_refused() -> None:
    for bad in ({"latency_ms": -1}, {"jitter_ms": 10, "latency_ms": 5}, {"drop": True}):
        with pytest.raises(ValueError):
            LinkFault.parse(bad)
