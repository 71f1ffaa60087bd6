"""A circuit breaker: stop calling a failing system for a while, then probe it once."""
from __future__ import annotations

import logging
import time
from typing import Callable, Literal

log = logging.getLogger(__name__)

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after `failure_threshold` consecutive failed calls; half-opens after `reset_timeout` seconds.

    While open, callers are refused at once (no request leaves the process),
    which spares a struggling upstream and keeps our own latency bounded.
    Half-open lets exactly one probe through: its success closes the breaker,
    its failure re-opens it for another cool-down.
    """

    def __init__(
        self,
        *,
        failure_threshold: int = 5,
        reset_timeout: float = 10.0,
        name: str = "insurance",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout < 0:
            raise ValueError("reset_timeout must not be negative")
        self.failure_threshold = failure_threshold
        self.reset_timeout = reset_timeout
        self.name = name
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> BreakerState:
        """Where the breaker stands now ("half_open" once the cool-down has passed)."""
        if self._opened_at is None:
            return "closed"
        if self._clock() - self._opened_at >= self.reset_timeout:
            return "half_open"
        return "open"

    @property
    def consecutive_failures(self) -> int:
        """Failed calls since the last success."""
        return self._failures

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open, reserves the single probe."""
        state = self.state
        if state == "closed":
            return True
        if state == "open" or self._probing:
            return False
        self._probing = True
        return True

    def record_success(self) -> None:
        """A call got an answer: the system works, close the breaker."""
        if self._opened_at is not None:
            log.warning("%s circuit closed: the system answers again", self.name)
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def record_failure(self) -> None:
        """A call failed (after its retries); may open or re-open the breaker."""
        self._failures += 1
        state = self.state
        if state == "open":
            # A call that left before the breaker opened: the cool-down already runs.
            return
        if state == "half_open" or self._failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """A call was abandoned (cancelled) without a verdict: free the probe slot."""
        self._probing = False

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._probing = False
        log.warning(
            "%s circuit open for %.1fs after %d consecutive failed calls",
            self.name, self.reset_timeout, self._failures,
        )
