"""Turn CRM date and time values into the organisation's calendar dates.

A CRM sends two kinds of values for a close date. A datetime (an instant) is
converted to the organisation's time zone before its date is taken, so a deal
closed at 01:09 UTC on 1 April is a 31 March deal in Phoenix. A date-only value
is a calendar date already and is kept as given: moving it through UTC or the
local zone would shift it by a day.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo


def local_date_of_instant(instant: dt.datetime, time_zone: str) -> dt.date:
    """Return the calendar date of an aware datetime in ``time_zone``."""
    if instant.tzinfo is None:
        raise ValueError(
            f"{instant.isoformat()} has no time zone; an instant needs one."
        )
    return instant.astimezone(ZoneInfo(time_zone)).date()


def parse_iso_instant(value: str) -> dt.datetime:
    """Parse an ISO 8601 timestamp such as ``2023-04-01T01:09:44Z``."""
    instant = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    if instant.tzinfo is None:
        raise ValueError(f"{value!r} has no UTC offset; an instant needs one.")
    return instant


def date_of_epoch_millis_date(millis: int | str) -> dt.date:
    """Return the date of a date-only value sent as epoch milliseconds at 00:00 UTC.

    HubSpot sends date properties this way; the date is read in UTC, never in
    the organisation's zone.
    """
    seconds, remainder = divmod(int(millis), 1000)
    instant = dt.datetime.fromtimestamp(seconds, tz=dt.UTC)
    if remainder or instant.time() != dt.time(0):
        raise ValueError(
            f"{millis} is not midnight UTC, so it is not a date-only value."
        )
    return instant.date()


def parse_iso_date(value: str) -> dt.date:
    """Parse a date-only value such as Salesforce's ``CloseDate`` (``2023-05-26``)."""
    return dt.date.fromisoformat(value.strip())


def period_bounds(
    start: dt.date, end: dt.date, time_zone: str
) -> tuple[dt.datetime, dt.datetime]:
    """Return the aware instants of local midnight at ``start`` and at ``end``.

    The period is half-open: an instant ``t`` is inside when start <= t < end.
    """
    zone = ZoneInfo(time_zone)
    return (
        dt.datetime.combine(start, dt.time(0), tzinfo=zone),
        dt.datetime.combine(end, dt.time(0), tzinfo=zone),
    )


def local_instant(day: dt.date, wall_time: dt.time, time_zone: str) -> dt.datetime:
    """Return the UTC instant of ``wall_time`` on ``day`` in ``time_zone``.

    The zone comes from zoneinfo, whose offsets follow the date. A pytz zone
    passed as ``tzinfo`` would use the zone's first historical offset instead
    (Shanghai's local mean time, +08:05:43).
    """
    local = dt.datetime.combine(day, wall_time, tzinfo=ZoneInfo(time_zone))
    return local.astimezone(dt.UTC)


def same_local_time_after(
    instant: dt.datetime, days: int, time_zone: str
) -> dt.datetime:
    """Return the instant ``days`` calendar days later at the same local time.

    "Tomorrow at 9:00" across a daylight-saving change is 23 or 25 hours away,
    not 24: the days are added to the local date, and the local time is then
    converted back to UTC.
    """
    local = instant.astimezone(ZoneInfo(time_zone))
    later = local.date() + dt.timedelta(days=days)
    return local_instant(later, local.time().replace(tzinfo=None), time_zone)


def week_bounds(day: dt.date, time_zone: str) -> tuple[dt.datetime, dt.datetime]:
    """Return local midnight on the Monday of ``day``'s week and on the next Monday.

    A week that contains a daylight-saving change lasts 167 or 169 hours.
    """
    monday = day - dt.timedelta(days=day.weekday())
    return period_bounds(monday, monday + dt.timedelta(days=7), time_zone)
