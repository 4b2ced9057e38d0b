"""Whether a rep can take a lead now, and if not, the reason in words.

Checked for every candidate: the membership is active and within its start
and end dates, the rep is not paused in the pool, not on time off
(``goals.selectors.members_away_on``) and below their caps. The day is the
organisation's local date at the time of routing. A rep with working hours
(``routing.models.WorkingHours``) takes pool leads only inside them, in the
rep's own time zone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection

from django.db.models import Count

from activity.models import Lead
from goals.selectors import members_away_on
from routing.config_cache import cached, in_config_scope
from spm.models import Membership


def membership_reason(member: Membership, day: dt.date) -> str:
    """Return why ``member`` cannot take leads on ``day``, or "" when they can."""
    if not member.is_active:
        return "no longer an active member"
    if member.start_date and member.start_date > day:
        return f"starts on {member.start_date.isoformat()}"
    if member.end_date and member.end_date < day:
        return f"left on {member.end_date.isoformat()}"
    return ""


def working_hours_reason(member: Membership, now: dt.datetime) -> str:
    """Return why ``member`` is outside their working hours at ``now``, or "".

    ``member.working_hours`` is read from ``select_related``, so this costs
    no query.
    """
    hours = getattr(member, "working_hours", None)
    if hours is None or hours.is_open_at(now):
        return ""
    return f"outside working hours ({hours.describe()})"


def away_member_ids(member_ids: Collection[int], day: dt.date) -> set[int]:
    """Return the members on time off on ``day``, in at most one query.

    Inside a configuration scope, the organisation's members away on ``day``
    are read once per configuration version and day.
    """
    if not member_ids:
        return set()
    if not in_config_scope():
        return members_away_on(member_ids, day)
    away = cached(f"away:{day.isoformat()}", lambda: members_away_on(None, day))
    return away.intersection(member_ids)


def open_lead_counts(member_ids: Collection[int]) -> dict[int, int]:
    """Return the number of open leads each member owns, in one query."""
    if not member_ids:
        return {}
    rows = (
        Lead.objects.filter(owner_id__in=member_ids, status__in=Lead.OPEN_STATUSES)
        .values("owner_id")
        .annotate(count=Count("id"))
        .order_by()
    )
    counts = dict.fromkeys(member_ids, 0)
    counts.update({row["owner_id"]: row["count"] for row in rows})
    return counts


def daily_cap_reason(cap: int | None, given_today: int) -> str:
    if cap is not None and given_today >= cap:
        return f"reached the daily cap of {cap}"
    return ""


def open_cap_reason(cap: int | None, open_leads: int) -> str:
    if cap is not None and open_leads >= cap:
        return f"owns {open_leads} open leads, at the cap of {cap}"
    return ""
