"""Optional capabilities of a previews stack: what the seed does not define, each declared
in ``[previews]`` and each with its own mechanism. Absent, a check that needs one reports
``unknown`` with :class:`Unavailable`'s reason, never ``fail``.

- ``git_log_command``: an exec hook printing a workspace's git history (one subject a
  line, newest first); ``{user}`` in any argument is replaced by the user id.
- ``usage_url``: an HTTP endpoint answering ``{"usage": {counter: n, …}}`` (the stack's
  usage counters, for the cost estimate).
- ``capacity``: the most edit containers the stack may run at once.

This is the only module of the previews system that may talk to anything but the seed's
endpoints (docs/contracts/previews.openapi.yaml) and AWS; a unit test greps for that.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from .config import PreviewsTarget


class Unavailable(LookupError):
    """The inventory does not declare the capability; the message is the reason."""


def capacity(target: PreviewsTarget) -> int:
    if target.capacity is None:
        raise Unavailable("the inventory declares no [previews] capacity")
    return target.capacity


async def git_log(target: PreviewsTarget, user: str, timeout: float = 15.0) -> list[str]:
    """The user's workspace history (commit subjects, newest first) from the exec hook."""
    if not target.git_log_command:
        raise Unavailable("the inventory declares no [previews] git_log_command (an exec "
                          "hook reading a workspace's git history)")
    argv = [a.replace("{user}", user) for a in target.git_log_command]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        raise RuntimeError(f"[previews] git_log_command timed out after {timeout:g} s"
                           ) from None
    if proc.returncode != 0:
        raise RuntimeError(f"[previews] git_log_command exited {proc.returncode}: "
                           f"{err.decode(errors='replace').strip()[:200]}")
    return [line for line in out.decode(errors="replace").splitlines() if line.strip()]


async def usage(target: PreviewsTarget, http: aiohttp.ClientSession,
                ssl: Any = True) -> dict[str, Any] | None:
    """The stack's usage counters, or None when it declares no ``usage_url`` or the
    answer has none (the cost check then reports ``unknown``)."""
    if not target.usage_url:
        return None
    async with http.get(str(target.usage_url), ssl=ssl) as r:
        if r.status != 200:
            return None
        body = await r.json(content_type=None)
    found = body.get("usage") if isinstance(body, dict) else None
    return found if isinstance(found, dict) else None
