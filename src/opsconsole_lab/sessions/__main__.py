"""``python -m opsconsole_lab.sessions --state-dir D --aws-endpoint URL [--port P] ...``

Runs the whole sessions stack in this process (edit containers are its children) and
writes ``<state-dir>/stack.json`` with its URL once it serves. SIGTERM/SIGINT stop it
cleanly: containers are stopped and their sessions end ``expired`` (reason shutdown).
"""

from __future__ import annotations

import asyncio
import logging
import sys

from .config import parse_args
from .stack import serve


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    for noisy in ("botocore", "aiobotocore", "aioboto3", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    asyncio.run(serve(cfg))


if __name__ == "__main__":
    main()
