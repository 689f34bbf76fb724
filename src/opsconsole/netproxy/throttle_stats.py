"""What ``aws.throttle`` leaves at the HTTP fault proxy, read by any pack: whether the
kind can run against an inventory, and the proxy's per-service pass/throttle counters.
Kept outside the AWS system so that a pack of another system (the previews burst) can
read them without importing it (systems do not import each other)."""

from __future__ import annotations

from typing import Any

import aiohttp

from ..errors import UserError
from .client import ProxyClient

KIND = "aws.throttle"


def throttle_available(where: Any) -> str | None:
    """None when ``aws.throttle`` can run against ``where`` (a scenario's run, or an
    inventory), else the reason it cannot (for an ``unknown`` verdict)."""
    inventory = getattr(where, "inventory", where)
    aws = getattr(inventory, "aws", None)
    if aws is None:
        return "the inventory has no [aws] target"
    if not aws.fault_proxy_url:
        return ("[aws] fault_proxy_url is not set: aws.throttle needs an HTTP fault proxy "
                "in front of the AWS endpoint (the embedded lab runs one; real AWS endpoints "
                "are TLS to AWS and cannot be fronted)")
    return None


async def proxy_stats(http: aiohttp.ClientSession, control_url: str) -> dict[str, Any]:
    """The proxy's counters: ``aws.services.<service>.passed / throttled /
    throttled_by_operation``, ``aws.throttles`` (rules) and ``forward`` (the router link)."""
    return await control_call(http, "GET", control_url, "/stats")


async def throttle_counts(where: Any, service: str = "dynamodb") -> dict[str, Any]:
    """``{"passed", "throttled", "upstream_errors", "throttled_by_operation"}`` of one
    service at the proxy of ``where`` (a run: its inventory and HTTP session). Raises
    :class:`UserError` with :func:`throttle_available`'s reason when there is none."""
    reason = throttle_available(where)
    if reason:
        raise UserError(f"{KIND}: not available here: {reason}")
    url = where.inventory.aws.fault_proxy_url
    stats = await proxy_stats(where.http, url)
    empty = {"passed": 0, "throttled": 0, "upstream_errors": 0, "throttled_by_operation": {}}
    return stats["aws"]["services"].get(service, empty)


async def control_call(http: aiohttp.ClientSession, method: str, control_url: str,
                       path: str, body: dict[str, Any] | None = None) -> Any:
    """One call of the proxy's control API, its errors one line labelled ``aws.throttle``."""
    return await ProxyClient(http, control_url, label=KIND).call(method, path, body)
