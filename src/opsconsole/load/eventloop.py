"""The Vault load worker's event loop: uvloop (libuv) where it is installed.

A generator's own CPU per request is mostly event-loop work (epoll, timers, socket writes):
at 500 req/s py-spy put 90 % of the Vault load worker's samples in ``select`` and the
transport's ``write``. uvloop does the same work in C: 10.0 -> 7.9 % of a core at 500 req/s
(docs/PERFORMANCE.md). Without uvloop (e.g. Windows) the standard loop runs. The mesh
worker stays on asyncio: its time goes to Python code, and its CPU was the same either way.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def run(main: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)
