"""Builders of the goals tests: quotas, benchmarks and time off, written directly.

Rows are created with ``unscoped`` and an explicit organisation, so a test
can set up data without a current organisation and without the audit log.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from goals.models import ActivityBenchmark, Quota, QuotaMetric, TimeOff
from spm.models import Membership, Team

D = dt.date
# Q1 2024 of a calendar fiscal year: 1 January to 31 March, 91 days.
Q1_START = D(2024, 1, 1)
Q1_END = D(2024, 4, 1)
# Q4 2023, the period before it.
Q4_START = D(2023, 10, 1)


def make_quota(
    owner: Membership | Team,
    amount: str,
    start: dt.date = Q1_START,
    end: dt.date = Q1_END,
    metric: str = QuotaMetric.BOOKINGS,
    currency: str = "USD",
) -> Quota:
    owner_field = "member" if isinstance(owner, Membership) else "team"
    return Quota.unscoped.create(
        organization_id=owner.organization_id,
        metric=metric,
        period_start=start,
        period_end=end,
        amount=Decimal(amount),
        currency="" if metric == QuotaMetric.DEAL_COUNT else currency,
        **{owner_field: owner},
    )


def make_time_off(member: Membership, start: dt.date, end: dt.date) -> TimeOff:
    return TimeOff.unscoped.create(
        organization_id=member.organization_id,
        member=member,
        start_date=start,
        end_date=end,
    )


def make_benchmark(
    organization_id: int,
    activity_type: str = "call",
    target: str = "10",
    unit: str = "day",
    ramp: list | None = None,
    role: str = "",
    team: Team | None = None,
) -> ActivityBenchmark:
    return ActivityBenchmark.unscoped.create(
        organization_id=organization_id,
        activity_type=activity_type,
        target=Decimal(target),
        unit=unit,
        ramp=ramp or [],
        role=role,
        team=team,
    )


def set_dates(
    member: Membership, start: dt.date | None = None, end: dt.date | None = None
) -> Membership:
    Membership.unscoped.filter(pk=member.pk).update(start_date=start, end_date=end)
    member.refresh_from_db()
    return member
