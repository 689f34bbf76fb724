"""The generator's lean HTTP client against a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from opsconsole.lab.ports import free_ports
from opsconsole.load.fasthttp import FastHttp, HttpError


@pytest.fixture
async def server():
    seen: list[tuple[str, str, bytes]] = []

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.append((request.method, request.headers.get("X-Vault-Token", ""), body))
        if request.path == "/chunked":
            resp = web.StreamResponse()
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for part in (b"a" * 3000, b"b" * 10):
                await resp.write(part)
            await resp.write_eof()
            return resp
        if request.path == "/empty":
            return web.Response(status=204)
        if request.path == "/slow":
            await asyncio.sleep(2)
        if request.path == "/close":
            return web.Response(text="bye", headers={"Connection": "close"})
        return web.json_response({"ok": True, "n": len(body)}, status=201)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    [port] = free_ports(1)
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", seen
    await runner.cleanup()


async def test_requests_reuse_connections_and_read_every_framing(server) -> None:
    url, seen = server
    client = FastHttp(url, users=2, timeout_s=1)
    try:
        post = client.encode("POST", "/kv", {"X-Vault-Token": "t"}, b'{"v": 1}')
        statuses = await asyncio.gather(*(client.request(post) for _ in range(50)))
        assert statuses == [201] * 50
        assert seen[0] == ("POST", "t", b'{"v": 1}') and len(seen) == 50
        assert await client.request(client.encode("GET", "/chunked", {})) == 200
        assert await client.request(client.encode("GET", "/empty", {})) == 204
        assert await client.request(client.encode("GET", "/close", {})) == 200
        assert await client.request(client.encode("GET", "/after-close", {})) == 201
        with pytest.raises(HttpError, match="no response within 1 s"):
            await client.request(client.encode("GET", "/slow", {}))
        assert await client.request(client.encode("GET", "/after-timeout", {})) == 201
    finally:
        await client.close()


async def test_a_refused_connection_is_an_error_not_a_hang() -> None:
    [port] = free_ports(1)
    client = FastHttp(f"http://127.0.0.1:{port}", users=1, timeout_s=1)
    with pytest.raises(HttpError, match="connect"):
        await client.request(client.encode("GET", "/", {}))
    with pytest.raises(ValueError, match="http:// and https://"):
        FastHttp("ftp://example.invalid", users=1)
