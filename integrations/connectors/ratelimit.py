"""Client-side rate limiting: a rolling-window limiter per API token.

With Redis configured (``CACHE_URL``, ``REDIS_URL`` or a Redis
``CELERY_BROKER_URL``), every worker process of one token shares one window,
kept in a Redis sorted set. Without Redis, each process keeps its own window,
so two processes syncing the same token can together exceed the limit.
"""

from __future__ import annotations

import collections
import hashlib
import logging
import os
import threading
import time
import uuid

import redis
from django.conf import settings

logger = logging.getLogger(__name__)


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


# Take a slot in the window stored at KEYS[1] if one is free.
# ARGV: maximum requests, window in microseconds, a unique member name.
# Returns {1, 0} when the slot was taken, else {0, microseconds until the
# oldest request leaves the window}. Redis's own clock times every worker,
# so clock skew between worker hosts cannot widen the window.
_TAKE_SLOT_SCRIPT = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000000 + tonumber(now_parts[2])
local max_requests = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) < max_requests then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000) + 1000)
  return {1, 0}
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(oldest[2]) + window - now}
"""


class RedisRollingWindowLimiter:
    """A ``RollingWindowLimiter`` whose window is shared through Redis.

    Each request is a member of a sorted set scored by the Redis server's
    time in microseconds. A Lua script drops the members older than the
    window, counts the rest and adds the new request in one atomic step, so
    processes on any host never put more than ``max_requests`` in a window.
    If Redis cannot be reached, the limiter logs a warning and falls back to
    a window of this process only until Redis responds again.
    """

    def __init__(
        self,
        client: redis.Redis,
        key: str,
        max_requests: int,
        window_seconds: float,
        clock: Clock = REAL_CLOCK,
    ):
        self.local = RollingWindowLimiter(max_requests, window_seconds, clock)
        self.max_requests = max_requests
        self.window_seconds = window_seconds
        self.clock = clock
        self.client = client
        self.key = key
        self._take_slot = client.register_script(_TAKE_SLOT_SCRIPT)
        self._window_microseconds = int(window_seconds * 1_000_000)
        self._redis_failures = 0

    def acquire(self) -> float:
        """Wait for a free slot in the shared window and return the seconds waited."""
        waited = 0.0
        member = uuid.uuid4().hex
        while True:
            try:
                slot_taken, wait_microseconds = self._take_slot(
                    keys=[self.key],
                    args=[self.max_requests, self._window_microseconds, member],
                )
            except redis.RedisError as exc:
                return waited + self._acquire_locally(exc)
            self._redis_failures = 0
            if slot_taken:
                return waited
            delay = max(int(wait_microseconds) / 1_000_000, 1e-6)
            self.clock.sleep(delay)
            waited += delay

    def _acquire_locally(self, exc: redis.RedisError) -> float:
        self._redis_failures += 1
        # Log the first failure and then every hundredth, not each request.
        if self._redis_failures % 100 == 1:
            logger.warning(
                "Redis rate limiter %s failed (%s failures in a row), using this "
                "process's window: %s",
                self.key,
                self._redis_failures,
                exc,
            )
        return self.local.acquire()


def shared_redis_url() -> str:
    """Return the Redis URL that limiters share, or "" when none is configured.

    The order matches the cache's: ``CACHE_URL``, ``REDIS_URL``, then the
    Celery broker if it is Redis.
    """
    candidates = [
        os.environ.get("CACHE_URL", ""),
        os.environ.get("REDIS_URL", ""),
        getattr(settings, "CELERY_BROKER_URL", "") or "",
    ]
    for url in candidates:
        if url.startswith(("redis://", "rediss://")):
            return url
    return ""


_limiters: dict[tuple[str, str], RollingWindowLimiter | RedisRollingWindowLimiter] = {}
_limiters_lock = threading.Lock()
_redis_clients: dict[str, redis.Redis] = {}


def _redis_client(url: str) -> redis.Redis:
    client = _redis_clients.get(url)
    if client is None:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        _redis_clients[url] = client
    return client


def limiter_for(
    token: str, policy: str, max_requests: int, window_seconds: float
) -> RollingWindowLimiter | RedisRollingWindowLimiter:
    """Return the limiter of one token and policy, creating it once per process.

    The limiter is shared through Redis when ``shared_redis_url()`` names
    one, else it is this process's own. The token is keyed by its SHA-256
    digest, so neither the registry nor Redis stores the secret.
    """
    digest = hashlib.sha256(token.encode()).hexdigest()
    key = (digest, policy)
    with _limiters_lock:
        limiter = _limiters.get(key)
        if limiter is None:
            url = shared_redis_url()
            if url:
                limiter = RedisRollingWindowLimiter(
                    _redis_client(url),
                    f"attain:crm-rate-limit:{policy}:{digest}",
                    max_requests,
                    window_seconds,
                )
            else:
                limiter = RollingWindowLimiter(max_requests, window_seconds)
            _limiters[key] = limiter
        return limiter
