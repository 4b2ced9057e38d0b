"""The Redis-backed rate limiter, shared by every worker of one token.

These tests use the Redis named by CELERY_BROKER_URL and skip without it.
"""

from __future__ import annotations

import hashlib
import socket
import threading
import time
import uuid

import pytest
import redis
from django.conf import settings

from integrations.connectors import ratelimit
from integrations.connectors.ratelimit import (
    RedisRollingWindowLimiter,
    RollingWindowLimiter,
    limiter_for,
)

MAX_REQUESTS = 5
WINDOW = 0.5
# Each thread records the time after acquire() returns, which is a little
# later than the Redis time that scored the request. The window checks
# shrink by this much to allow for that delay.
TIMING_MARGIN = 0.05


@pytest.fixture
def redis_url():
    url = settings.CELERY_BROKER_URL
    if not url.startswith(("redis://", "rediss://")):
        pytest.skip("The shared limiter needs a Redis CELERY_BROKER_URL")
    return url


@pytest.fixture
def window_key(redis_url):
    key = f"attain:test-rate-limit:{uuid.uuid4().hex}"
    yield key
    redis.Redis.from_url(redis_url).delete(key)


@pytest.fixture
def fresh_registry(monkeypatch):
    """Start each test with no cached limiters, as a new process does."""
    monkeypatch.setattr(ratelimit, "_limiters", {})


def _max_in_window(times: list[float], window: float) -> int:
    times = sorted(times)
    highest = 0
    start = 0
    for end, moment in enumerate(times):
        while times[start] <= moment - window:
            start += 1
        highest = max(highest, end - start + 1)
    return highest


def _acquire_in_threads(limiters: list, per_thread: int) -> list[float]:
    times: list[float] = []
    times_lock = threading.Lock()
    barrier = threading.Barrier(len(limiters))

    def take(limiter) -> None:
        barrier.wait()
        for _ in range(per_thread):
            limiter.acquire()
            with times_lock:
                times.append(time.monotonic())

    threads = [threading.Thread(target=take, args=(lim,)) for lim in limiters]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return times


def test_two_workers_share_one_window(redis_url, window_key):
    # Each limiter has its own Redis client and connection pool, as two
    # worker processes would.
    limiters = [
        RedisRollingWindowLimiter(
            redis.Redis.from_url(redis_url), window_key, MAX_REQUESTS, WINDOW
        )
        for _ in range(2)
    ]

    times = _acquire_in_threads(limiters, per_thread=10)

    assert len(times) == 20
    assert _max_in_window(times, WINDOW - TIMING_MARGIN) <= MAX_REQUESTS
    # 20 requests at 5 per 0.5 s: requests 16 to 20 start no earlier than
    # 1.5 s after the first.
    assert max(times) - min(times) >= 1.5 - TIMING_MARGIN


def test_separate_windows_let_two_workers_exceed_limit():
    # The in-process limiter: each worker has its own window, so together
    # they send twice the limit at once. This is what the shared one fixes.
    limiters = [RollingWindowLimiter(MAX_REQUESTS, WINDOW) for _ in range(2)]

    times = _acquire_in_threads(limiters, per_thread=MAX_REQUESTS)

    assert _max_in_window(times, WINDOW - TIMING_MARGIN) == 2 * MAX_REQUESTS


def test_third_request_waits_for_window(redis_url, window_key):
    limiter = RedisRollingWindowLimiter(
        redis.Redis.from_url(redis_url), window_key, 2, 0.3
    )

    first_waits = [limiter.acquire(), limiter.acquire()]
    third_wait = limiter.acquire()

    assert first_waits == [0.0, 0.0]
    # The third request waits for the first to leave the 0.3 s window.
    assert 0.2 <= third_wait <= 0.35
    # The script dropped at least the first request from the sorted set.
    stored = redis.Redis.from_url(redis_url).zcard(window_key)
    assert 1 <= stored <= 2


def test_window_key_expires(redis_url, window_key):
    limiter = RedisRollingWindowLimiter(
        redis.Redis.from_url(redis_url), window_key, 3, 1.0
    )

    limiter.acquire()

    ttl_ms = redis.Redis.from_url(redis_url).pttl(window_key)
    # One window (1,000 ms) plus one second.
    assert 1_000 < ttl_ms <= 2_000


def test_limiter_for_uses_redis_when_configured(redis_url, fresh_registry, monkeypatch):
    monkeypatch.delenv("CACHE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    token = f"pat-na1-{uuid.uuid4()}"

    limiter = limiter_for(token, "burst", 100, 10.0)

    digest = hashlib.sha256(token.encode()).hexdigest()
    assert isinstance(limiter, RedisRollingWindowLimiter)
    assert limiter.key == f"attain:crm-rate-limit:burst:{digest}"
    assert token not in limiter.key
    assert limiter_for(token, "burst", 100, 10.0) is limiter


def test_limiter_for_prefers_cache_url(redis_url, fresh_registry, monkeypatch):
    monkeypatch.setenv("CACHE_URL", "redis://127.0.0.1:6379/4")
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/5")

    assert ratelimit.shared_redis_url() == "redis://127.0.0.1:6379/4"


def test_limiter_for_without_redis_is_local(fresh_registry, monkeypatch, settings):
    monkeypatch.delenv("CACHE_URL", raising=False)
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings.CELERY_BROKER_URL = ""

    limiter = limiter_for("pat-na1-local-only", "burst", 100, 10.0)

    assert type(limiter) is RollingWindowLimiter


def test_unreachable_redis_falls_back_to_local_window(caplog):
    # A loopback port with nothing listening: connections are refused.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1)
    limiter = RedisRollingWindowLimiter(client, "attain:unreachable", 2, 0.3)

    waits = [limiter.acquire() for _ in range(3)]

    assert waits[:2] == [0.0, 0.0]
    # The local window still enforces the limit, so the third request waits.
    assert 0.2 <= waits[2] <= 0.35
    warnings = [r for r in caplog.records if "Redis rate limiter" in r.message]
    # Logged for the first failure only, not for each of the three.
    assert len(warnings) == 1
