"""Retrying vault and store calls: 429 through the limiter, other transient faults with backoff.

Only faults the service marks transient (``ServiceError.transient``: 429, 5xx, timeouts) are
retried; everything else propagates at once to be reported per item (or to fail the job,
for store faults). Attempts are capped so a fault that never clears ends as a reported item.
Every wait is bounded: ``Retry-After`` by :func:`shared.errors.cap_retry_after`, and, when a
slice deadline is given, by the deadline (a wait past it raises ``SliceDeadlineError``).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from shared import telemetry
from shared.errors import ServiceError, ThrottledError, cap_retry_after
from shared.rewrap._deadline import Deadline, check_wait
from shared.rewrap._limiter import AimdRateLimiter

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds on retrying.

    Attributes:
        max_transient_attempts: attempts for 5xx/timeouts before giving up.
        max_throttled_attempts: attempts answered 429 before giving up.
        base_backoff_seconds: first backoff; doubles per attempt (full jitter).
        max_backoff_seconds: backoff cap.
    """

    max_transient_attempts: int = 5
    max_throttled_attempts: int = 30
    base_backoff_seconds: float = 0.1
    max_backoff_seconds: float = 10.0

    def backoff(self, attempt: int, jitter: float) -> float:
        """Seconds to wait before attempt ``attempt + 1`` (``jitter`` in [0, 1))."""
        ceiling = min(self.max_backoff_seconds, self.base_backoff_seconds * 2.0**attempt)
        return ceiling * (0.5 + jitter / 2)


@dataclass
class CallStats:
    """Counts shared by all workers of one run (single event loop: plain ints suffice)."""

    vault_operations: int = 0
    throttled: int = 0
    #: The vault the calls go to (a telemetry attribute: ``keyward.vault.*`` metrics).
    vault: str = "unknown"


class VaultCaller:
    """Runs vault operations through the limiter with the retry policy."""

    def __init__(
        self,
        limiter: AimdRateLimiter,
        policy: RetryPolicy,
        stats: CallStats,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        jitter: Callable[[], float] = random.random,
        deadline: Deadline | None = None,
    ) -> None:
        self._deadline = deadline
        self._limiter = limiter
        self._policy = policy
        self._stats = stats
        self._sleep = sleep
        self._jitter = jitter

    async def call(self, operation: Callable[[], Awaitable[T]]) -> T:
        """Run ``operation`` (one vault request) until it succeeds or retries run out.

        Raises:
            ThrottledError: still throttled after ``max_throttled_attempts``.
            ServiceError: a non-transient refusal, or transient faults past the cap.
            SliceDeadlineError: the next wait would end past the slice deadline.
        """
        throttled = 0
        transient = 0
        while True:
            issued_at = await self._limiter.acquire(self._deadline)
            self._stats.vault_operations += 1
            telemetry.vault_operation(self._stats.vault)
            try:
                result = await operation()
            except ThrottledError as error:
                self._stats.throttled += 1
                telemetry.vault_throttled(self._stats.vault)
                self._limiter.on_throttled(issued_at, error.retry_after)
                throttled += 1
                if throttled >= self._policy.max_throttled_attempts:
                    raise
                continue
            except ServiceError as error:
                transient += 1
                if not error.transient or transient >= self._policy.max_transient_attempts:
                    raise
                wait = self._policy.backoff(transient - 1, self._jitter())
                check_wait(self._deadline, wait, "a vault retry")
                await self._sleep(wait)
                continue
            self._limiter.on_success()
            return result


async def call_store(
    operation: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    jitter: Callable[[], float] = random.random,
    deadline: Deadline | None = None,
) -> T:
    """Run a store call, retrying transient faults (429 honours ``Retry-After``, capped).

    Raises:
        ServiceError: non-transient, or transient past ``max_transient_attempts``.
        SliceDeadlineError: the next wait would end past ``deadline``.
    """
    attempt = 0
    while True:
        try:
            return await operation()
        except ServiceError as error:
            attempt += 1
            if not error.transient or attempt >= policy.max_transient_attempts:
                raise
            wait = policy.backoff(attempt - 1, jitter())
            if isinstance(error, ThrottledError):
                wait = max(wait, cap_retry_after(error.retry_after) or 0.0)
            check_wait(deadline, wait, "a store retry")
            await sleep(wait)
