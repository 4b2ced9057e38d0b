"""When email may go out: quiet hours and the daily digest, in the member's zone."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from notifications.models import MemberSettings
from spm.models import Organization

# The digest goes out at this local time, once a day, with the low-urgency
# events gathered since the previous one.
DIGEST_LOCAL_TIME = dt.time(8, 0)


def member_zone(
    settings: MemberSettings | None, organization: Organization
) -> ZoneInfo:
    """Return the member's own time zone, else the organisation's."""
    if settings is not None and settings.time_zone:
        return ZoneInfo(settings.time_zone)
    return organization.zoneinfo


def in_quiet_hours(local_time: dt.time, start: dt.time, end: dt.time) -> bool:
    """Say whether ``local_time`` is in [start, end), which may cross midnight."""
    if start < end:
        return start <= local_time < end
    return local_time >= start or local_time < end


def _local_moment(day: dt.date, time: dt.time, zone: ZoneInfo) -> dt.datetime:
    # A wall time skipped by a daylight-saving change maps to the instant
    # after the change (fold=0 uses the offset from before it).
    return dt.datetime.combine(day, time, tzinfo=zone)


def quiet_hours_end(
    settings: MemberSettings | None, zone: ZoneInfo, now: dt.datetime
) -> dt.datetime | None:
    """Return when the quiet hours around ``now`` end, or None outside quiet hours."""
    if settings is None or not settings.has_quiet_hours:
        return None
    local = now.astimezone(zone)
    start, end = settings.quiet_start, settings.quiet_end
    if not in_quiet_hours(local.time(), start, end):
        return None
    # Before the end time the quiet hours end today; after the start time of
    # hours that cross midnight they end tomorrow.
    day = local.date() if local.time() < end else local.date() + dt.timedelta(days=1)
    return _local_moment(day, end, zone)


def digest_due_at(
    settings: MemberSettings | None, zone: ZoneInfo, now: dt.datetime
) -> dt.datetime:
    """Return the next digest time after ``now``, moved past quiet hours if needed."""
    local = now.astimezone(zone)
    day = local.date()
    if local.time() >= DIGEST_LOCAL_TIME:
        day += dt.timedelta(days=1)
    due = _local_moment(day, DIGEST_LOCAL_TIME, zone)
    return quiet_hours_end(settings, zone, due) or due
