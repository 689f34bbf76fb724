"""`python -m opsconsole.netproxy --links FILE --control-port N`: run the lab's fault proxy."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
from pathlib import Path

from aiohttp import web

from .control import make_app
from .proxy import FaultProxy, Link


async def serve(links_file: Path, control_port: int) -> None:
    spec = json.loads(links_file.read_text())
    proxy = FaultProxy([Link(name=item["name"], listen=item["listen"],
                             upstream_host=item.get("upstream_host", "127.0.0.1"),
                             upstream_port=item["upstream_port"]) for item in spec])
    await proxy.start()
    runner = web.AppRunner(make_app(proxy), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", control_port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await proxy.stop()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="opsconsole-netproxy")
    parser.add_argument("--links", type=Path, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    args = parser.parse_args()
    asyncio.run(serve(args.links, args.control_port))


if __name__ == "__main__":
    main()
