"""Client-side rate limiting: a rolling-window limiter per API token.

Limiters live in this process only. Two worker processes syncing the same
token each keep their own count, so each should get half the budget.
"""

from __future__ import annotations

import collections
import hashlib
import threading
import time


class Clock:
    """Monotonic seconds and sleep; tests swap in a simulated clock."""

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


REAL_CLOCK = Clock()


class RollingWindowLimiter:
    """Allow at most ``max_requests`` in any ``window_seconds`` long window.

    A request at time t counts against every window (t - window, t]. The
    limiter keeps the times of the last ``max_requests`` requests and waits
    until the oldest leaves the window.
    """

    def __init__(
        self, max_requests: int, window_seconds: float, clock: Clock = REAL_CLOCK
    ):
        if max_requests < 1 or window_seconds <= 0:
            raise ValueError(
                f"Invalid limit {max_requests} per {window_seconds} s: both "
                "must be positive."
            )
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self.clock = clock
        self._times: collections.deque[float] = collections.deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Wait for a free slot, take it and return the seconds waited."""
        waited = 0.0
        # Holding the lock while sleeping queues the threads of one token in
        # arrival order, which is what sharing one budget means.
        with self._lock:
            while True:
                now = self.clock.now()
                while self._times and self._times[0] <= now - self.window_seconds:
                    self._times.popleft()
                if len(self._times) < self.max_requests:
                    self._times.append(now)
                    return waited
                delay = self._times[0] + self.window_seconds - now
                delay = max(delay, 1e-6)
                self.clock.sleep(delay)
                waited += delay


_limiters: dict[tuple[str, str], RollingWindowLimiter] = {}
_limiters_lock = threading.Lock()


def limiter_for(
    token: str, policy: str, max_requests: int, window_seconds: float
) -> RollingWindowLimiter:
    """Return this process's limiter of one token and policy, creating it once.

    The token is keyed by its SHA-256 digest, so the registry stores no secret.
    """
    digest = hashlib.sha256(token.encode()).hexdigest()
    key = (digest, policy)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            limiter = RollingWindowLimiter(max_requests, window_seconds)
            _limiters[key] = limiter
        return limiter
