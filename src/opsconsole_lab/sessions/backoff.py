"""Bounded exponential backoff with full jitter (AWS architecture blog style)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from botocore.exceptions import ClientError

T = TypeVar("T")

THROTTLE_CODES = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestLimitExceeded",
    "ProvisionedThroughputExceededException", "RequestThrottled", "TooManyRequestsException",
    "RequestThrottledException", "SlowDown", "LimitExceededException"})


@dataclass(frozen=True)
class Backoff:
    attempts: int = 6
    base: float = 0.2
    cap: float = 5.0

    def ceiling(self, attempt: int) -> float:
        """Upper bound of the wait after failed attempt number ``attempt`` (0-based)."""
        return min(self.cap, self.base * (2 ** attempt))

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        return (rng or random).uniform(0, self.ceiling(attempt))


class RetriesExhausted(Exception):
    def __init__(self, attempts: int, last: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last}")
        self.attempts = attempts
        self.last = last


def is_throttle(exc: BaseException) -> bool:
    return isinstance(exc, ClientError) and \
        exc.response.get("Error", {}).get("Code", "") in THROTTLE_CODES


async def retry(fn: Callable[[], Awaitable[T]], policy: Backoff,
                retryable: Callable[[BaseException], bool],
                on_retry: Callable[[int, float, BaseException], None] | None = None,
                sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                rng: random.Random | None = None) -> T:
    """Call ``fn`` until it succeeds, a non-retryable error escapes, or attempts run out."""
    for attempt in range(policy.attempts):
        try:
            return await fn()
        except Exception as exc:
            if not retryable(exc):
                raise
            if attempt + 1 >= policy.attempts:
                raise RetriesExhausted(policy.attempts, exc) from exc
            wait = policy.delay(attempt, rng)
            if on_retry is not None:
                on_retry(attempt + 1, wait, exc)
            await sleep(wait)
    raise AssertionError("unreachable")
