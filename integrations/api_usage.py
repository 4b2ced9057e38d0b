"""Counts of the CRM API requests each connection sends, kept in the cache.

The sync engine attaches ``count_calls`` to a connector's HTTP session, so
every response (429 and 5xx included) adds one to the run's ``api_calls``
and to two cache counters of the connection:

- one per second, kept for twice the burst window, which the budget view
  sums over the last ``BURST_WINDOW_SECONDS`` seconds;
- one per calendar day in the organisation's time zone, kept for two days.

With Redis as the cache (production), the counters add up the requests of
every worker process. With the local-memory cache, each process counts its
own requests only.

The sync engine reads the day counter as a ``DailyBudget``. With less than
``PRIORITY_BUDGET_SHARE`` of the daily limit left, a run syncs ownership and
stage changes only, and with nothing left it stops.

A CRM that reports its own usage in a response header (Salesforce's
Sforce-Limit-Info) gives its connector a ``reported_api_usage(response)``
method. ``count_calls`` then keeps the last (used, limit) reported, with the
time, for a day, and that is the connection's ``DailyBudget`` instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import requests
from django.core.cache import cache
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

BURST_WINDOW_SECONDS = 10
SECOND_COUNTER_TTL = 2 * BURST_WINDOW_SECONDS
DAY_COUNTER_TTL = 2 * 24 * 3600
# Salesforce counts requests over a rolling 24 hours, so an older report is
# no guide to the budget left now.
REPORTED_USAGE_TTL = 24 * 3600
# A sync run switches to priority mode when less than this share of the
# connection's daily request limit is left. The share keeps room for the
# owner and deal-stage changes of the rest of the day (the beat syncs every
# five minutes) and for write-backs and webhook fetches, which use the same
# budget. It is a judgement, not a figure from any CRM's documentation.
PRIORITY_BUDGET_SHARE = 0.2


def _second_key(connection_id: int, second: int) -> str:
    return f"crm-api:{connection_id}:second:{second}"


def _day_key(connection_id: int, day: dt.date) -> str:
    return f"crm-api:{connection_id}:day:{day.isoformat()}"


def _reported_key(connection_id: int) -> str:
    return f"crm-api:{connection_id}:reported"


def _increment(key: str, ttl: int) -> None:
    # add() is a no-op when the key exists, so two processes starting the
    # same counter both end up incrementing one value.
    cache.add(key, 0, ttl)
    try:
        cache.incr(key)
    except ValueError:
        # The key expired between add() and incr(): start it again at one.
        cache.add(key, 1, ttl)


def record_call(connection_id: int, time_zone: str, at: float | None = None) -> None:
    """Add one request to the connection's per-second and per-day counters."""
    now = time.time() if at is None else at
    day = dt.datetime.fromtimestamp(now, ZoneInfo(time_zone)).date()
    try:
        _increment(_second_key(connection_id, int(now)), SECOND_COUNTER_TTL)
        _increment(_day_key(connection_id, day), DAY_COUNTER_TTL)
    except RedisError as exc:
        # The budget view then shows too few calls; the sync itself goes on.
        logger.warning(
            "Counting a CRM API request of connection %s failed: %s",
            connection_id,
            exc,
        )


def calls_in_burst_window(
    connection_id: int,
    at: float | None = None,
    window_seconds: int = BURST_WINDOW_SECONDS,
) -> int:
    """Return the requests counted in the last ``window_seconds`` seconds.

    The counters have one-second buckets, so the sum covers the current
    second and the ``window_seconds - 1`` before it: up to one second more
    than a rolling window, never less. ``window_seconds`` is at most
    ``SECOND_COUNTER_TTL``, because older buckets have expired.
    """
    now = int(time.time() if at is None else at)
    keys = [
        _second_key(connection_id, second)
        for second in range(now - window_seconds + 1, now + 1)
    ]
    return sum(cache.get_many(keys).values())


def calls_on_day(connection_id: int, day: dt.date) -> int:
    return cache.get(_day_key(connection_id, day), 0)


@dataclass(frozen=True)
class ReportedUsage:
    """Daily requests used and allowed, as the CRM last reported them."""

    used: int
    limit: int
    at: dt.datetime


def record_reported_usage(
    connection_id: int, used: int, limit: int, at: float | None = None
) -> None:
    """Keep the CRM's last report of its daily usage, replacing the one before."""
    now = time.time() if at is None else at
    try:
        cache.set(_reported_key(connection_id), (used, limit, now), REPORTED_USAGE_TTL)
    except RedisError as exc:
        logger.warning(
            "Keeping the API usage reported for connection %s failed: %s",
            connection_id,
            exc,
        )


def reported_usage(connection_id: int) -> ReportedUsage | None:
    """Return the CRM's last report of its daily usage, or None if none is kept."""
    value = cache.get(_reported_key(connection_id))
    if value is None:
        return None
    used, limit, at = value
    return ReportedUsage(
        used=used, limit=limit, at=dt.datetime.fromtimestamp(at, dt.UTC)
    )


def count_calls(connector, run) -> bool:
    """Count each HTTP response of ``connector`` on ``run`` and in the cache.

    The session is the connector's ``session`` attribute, or that of its
    ``http`` client. Return False, counting nothing, when neither is a
    ``requests.Session``. Attaching again to the same connector replaces the
    earlier hook, so a connector reused for a second run counts each request
    once. A connector with ``reported_api_usage(response)`` also has the
    usage its CRM reports kept (see ``record_reported_usage``).
    """
    session = getattr(connector, "session", None)
    if session is None:
        session = getattr(getattr(connector, "http", None), "session", None)
    if not isinstance(session, requests.Session):
        return False
    connection = run.connection
    time_zone = connection.organization.time_zone
    reported = getattr(connector, "reported_api_usage", None)

    def on_response(response, *args, **kwargs):
        run.api_calls += 1
        record_call(connection.pk, time_zone)
        usage = reported(response) if reported is not None else None
        if usage is not None:
            record_reported_usage(connection.pk, *usage)
        return response

    hooks = session.hooks.setdefault("response", [])
    previous = getattr(session, "_attain_count_calls", None)
    if previous in hooks:
        hooks.remove(previous)
    hooks.append(on_response)
    session._attain_count_calls = on_response
    return True


@dataclass(frozen=True)
class DailyBudget:
    """Requests a connection sent today, against its provider's daily limit.

    ``stop_share`` is the share of the limit at which the budget counts as
    exhausted: 1 where the limit is the connection's own, less where the CRM
    counts other integrations' requests too and some must be left for them.
    """

    used: int
    limit: int
    stop_share: float = 1.0

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.used)

    @property
    def low(self) -> bool:
        """Whether less than ``PRIORITY_BUDGET_SHARE`` of the limit is left."""
        return self.remaining < self.limit * PRIORITY_BUDGET_SHARE

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit * self.stop_share
