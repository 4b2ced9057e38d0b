"""Elapsed business time between two instants, in the organisation's time zone.

Business hours are 09:00 to 17:00 local time, Monday to Friday. A lead that
arrives on Saturday and gets a response at 09:30 on Monday waited 30
business minutes, not 47.5 hours. Response-time alerts therefore do not
fire on reps for weekends and nights.

NOTE: the hours are the same for every organisation, and public holidays
count as business days; there is no per-organisation calendar yet.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from zoneinfo import ZoneInfo

DAY_START = dt.time(9, 0)
DAY_END = dt.time(17, 0)
BUSINESS_WEEKDAYS = 5
TENTH = Decimal("0.1")


def business_minutes(
    start: dt.datetime, end: dt.datetime, time_zone: ZoneInfo
) -> Decimal:
    """Return the business minutes in ``[start, end)``, to 0.1, or 0 if end <= start.

    Each local business day contributes its overlap with the range. The
    overlap is measured between UTC instants, because subtracting two
    datetimes that share a tzinfo gives the wall-clock difference, which is
    wrong across a daylight-saving change.
    """
    if end <= start:
        return Decimal(0)
    seconds = 0.0
    day = start.astimezone(time_zone).date()
    last_day = end.astimezone(time_zone).date()
    while day <= last_day:
        if day.weekday() < BUSINESS_WEEKDAYS:
            opens = dt.datetime.combine(day, DAY_START, tzinfo=time_zone)
            closes = dt.datetime.combine(day, DAY_END, tzinfo=time_zone)
            first = max(start, opens).astimezone(dt.UTC)
            last = min(end, closes).astimezone(dt.UTC)
            if last > first:
                seconds += (last - first).total_seconds()
        day += dt.timedelta(days=1)
    minutes = Decimal(str(seconds)) / 60
    return minutes.quantize(TENTH, ROUND_HALF_UP)


def business_deadline(
    start: dt.datetime, minutes: int, time_zone: ZoneInfo
) -> dt.datetime:
    """Return the instant at which ``minutes`` business minutes after ``start`` end.

    It is the inverse of ``business_minutes``: for the result ``end``,
    ``business_minutes(start, end, time_zone) == minutes``. A lead received
    on Friday at 16:55 with 10 minutes to go is due on Monday at 09:05.
    The result is in UTC.
    """
    remaining = dt.timedelta(minutes=minutes)
    day = start.astimezone(time_zone).date()
    while True:
        if day.weekday() < BUSINESS_WEEKDAYS:
            opens = dt.datetime.combine(day, DAY_START, tzinfo=time_zone)
            closes = dt.datetime.combine(day, DAY_END, tzinfo=time_zone)
            first = max(start, opens).astimezone(dt.UTC)
            last = closes.astimezone(dt.UTC)
            if last > first:
                if remaining <= last - first:
                    return first + remaining
                remaining -= last - first
        day += dt.timedelta(days=1)
