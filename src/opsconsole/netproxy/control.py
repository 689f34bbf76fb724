"""HTTP control API of the fault proxy (loopback only)."""

from __future__ import annotations

from aiohttp import web

from .proxy import FaultProxy, LinkFault


def make_app(proxy: FaultProxy) -> web.Application:
    routes = web.RouteTableDef()

    @routes.get("/links")
    async def links(_: web.Request) -> web.Response:
        return web.json_response([link.summary() for link in proxy.links.values()])

    @routes.put("/links/{name}/fault")
    async def set_fault(req: web.Request) -> web.Response:
        name = req.match_info["name"]
        if name not in proxy.links:
            return web.json_response({"error": f"no link {name}"}, status=404)
        try:
            fault = LinkFault.parse(await req.json())
        except (ValueError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        proxy.set_fault(name, fault)
        return web.json_response(proxy.links[name].summary())

    @routes.delete("/links/{name}/fault")
    async def clear_fault(req: web.Request) -> web.Response:
        name = req.match_info["name"]
        if name not in proxy.links:
            return web.json_response({"error": f"no link {name}"}, status=404)
        proxy.set_fault(name, LinkFault())
        return web.json_response(proxy.links[name].summary())

    @routes.delete("/faults")
    async def clear_all(_: web.Request) -> web.Response:
        for name in proxy.links:
            proxy.set_fault(name, LinkFault())
        return web.json_response({"cleared": len(proxy.links)})

    app = web.Application()
    app.add_routes(routes)
    return app
