"""Shared HTTP helpers: JSON GETs with a timeout, failures as short reasons."""

from __future__ import annotations

from typing import Any

import aiohttp

Json = dict[str, Any]
#: Exceptions that mean "the target did not answer properly", never a bug of ours.
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError, ValueError)


def reason(exc: BaseException) -> str:
    """A short, secret-free description of why a target could not be reached."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection refused ({exc.host}:{exc.port})"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    return type(exc).__name__


async def get_json(session: aiohttp.ClientSession, url: str, *, timeout: float = 2.0,
                   headers: dict[str, str] | None = None) -> tuple[int, Json]:
    async with session.get(url, headers=headers,
                           timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        text = await resp.text()
        if not text:
            return resp.status, {}
        return resp.status, await resp.json(content_type=None)
