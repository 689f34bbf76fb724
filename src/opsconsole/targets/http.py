"""Shared HTTP helpers: JSON GETs with a timeout, failures as short reasons."""

from __future__ import annotations

import ssl
from typing import Any

import aiohttp

from ..errors import UserError
from .tls import TlsClient, tls_reason

Json = dict[str, Any]
#: Exceptions that mean "the target did not answer properly", never a bug of ours.
NETWORK_ERRORS = (aiohttp.ClientError, TimeoutError, OSError, ValueError)


def reason(exc: BaseException) -> str:
    """A short, secret-free description of why a target could not be reached."""
    tls = tls_reason(exc)
    if tls:
        return tls
    if isinstance(exc, UserError):  # e.g. a CA file that cannot be loaded: names the key
        return str(exc).splitlines()[0]
    from .nats import NatsConnectError, connect_reason

    if isinstance(exc, NatsConnectError):
        return exc.cause
    if type(exc).__module__.startswith("nats"):
        return connect_reason(exc)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"connection refused ({exc.host}:{exc.port})"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status}"
    return type(exc).__name__


def ssl_for(target: TlsClient | None, url: str, where: str) -> ssl.SSLContext | bool:
    """The ``ssl=`` argument of an aiohttp request to ``url`` of ``target``: its context for
    https (the CA, client cert, skip-verify it names), aiohttp's default otherwise."""
    if target is None or not url.startswith("https:"):
        return True
    return target.ssl_context(where)


async def get_json(session: aiohttp.ClientSession, url: str, *, timeout: float = 2.0,
                   headers: dict[str, str] | None = None,
                   ssl: ssl.SSLContext | bool = True) -> tuple[int, Json]:
    async with session.get(url, headers=headers, ssl=ssl,
                           timeout=aiohttp.ClientTimeout(total=timeout)) as resp:
        text = await resp.text()
        if not text:
            return resp.status, {}
        return resp.status, await resp.json(content_type=None)
