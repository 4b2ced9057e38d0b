"""When a step is due: its delay in the rep's local calendar, then the send window.

Local time is the rep's own time zone when they set one, else the
organisation's. The send window is 09:00 to 17:00, Monday to Friday, local
time (the business hours of ``coaching.business_hours``). Delays in days keep
the local wall-clock time across a daylight-saving change, so "1 day later
at 09:00" is 23 or 25 hours later on those days. Every result is an aware
UTC datetime.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from activity.dates import local_instant, same_local_time_after
from coaching.business_hours import (
    BUSINESS_WEEKDAYS,
    DAY_END,
    DAY_START,
    business_deadline,
)
from notifications.models import MemberSettings
from spm.models import Membership


def member_zone(member: Membership) -> ZoneInfo:
    """Return the time zone that a rep's steps are scheduled in.

    It is the zone the rep set in their notification settings, else the
    organisation's. Costs one query for the settings row.
    """
    settings = (
        MemberSettings.unscoped.filter(
            organization_id=member.organization_id, member_id=member.pk
        )
        .only("time_zone")
        .first()
    )
    if settings is not None and settings.time_zone:
        return ZoneInfo(settings.time_zone)
    return ZoneInfo(member.organization.time_zone)


def _is_business_day(day: dt.date) -> bool:
    return day.weekday() < BUSINESS_WEEKDAYS


def add_business_days(start: dt.datetime, days: int, zone: ZoneInfo) -> dt.datetime:
    """Return the same local time ``days`` business days (Mon-Fri) after ``start``.

    From Friday 16:00, 1 business day is Monday 16:00 and 2 are Tuesday 16:00.
    From a Saturday, 1 business day is the Monday.
    """
    local = start.astimezone(zone)
    day = local.date()
    counted = 0
    while counted < days:
        day += dt.timedelta(days=1)
        if _is_business_day(day):
            counted += 1
    return local_instant(day, local.time().replace(tzinfo=None), zone.key)


def delay_end(
    start: dt.datetime, amount: int, unit: str, zone: ZoneInfo
) -> dt.datetime:
    """Return the instant at which a delay of ``amount`` ``unit`` after ``start`` ends.

    ``unit`` is a ``Step.DelayUnit`` value. Hours are elapsed hours; business
    hours count only the send window. The result is not yet moved into the
    send window.
    """
    if unit == "business_days":
        return add_business_days(start, amount, zone)
    if unit == "business_hours":
        return business_deadline(start, amount * 60, zone)
    if unit == "hours":
        return start.astimezone(dt.UTC) + dt.timedelta(hours=amount)
    if unit == "days":
        return same_local_time_after(start, amount, zone.key)
    raise ValueError(f"Unknown delay unit {unit!r}; expected a Step.DelayUnit value.")


def into_send_window(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Return ``instant`` if inside the send window, else the window's next opening."""
    local = instant.astimezone(zone)
    day = local.date()
    if _is_business_day(day):
        if DAY_START <= local.time() < DAY_END:
            return instant.astimezone(dt.UTC)
        if local.time() < DAY_START:
            return local_instant(day, DAY_START, zone.key)
    return next_window_opening(instant, zone)


def next_window_opening(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """Return 09:00 local on the first business day after ``instant``'s local date."""
    day = instant.astimezone(zone).date() + dt.timedelta(days=1)
    while not _is_business_day(day):
        day += dt.timedelta(days=1)
    return local_instant(day, DAY_START, zone.key)


def step_due_at(
    start: dt.datetime, amount: int, unit: str, zone: ZoneInfo
) -> dt.datetime:
    """Return when a step is due: its delay after ``start``, moved into the window."""
    return into_send_window(delay_end(start, amount, unit, zone), zone)
