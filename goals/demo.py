"""Targets for a generated organisation: quotas, benchmarks and some time off.

Each rep's quarterly quota is their mean quarterly bookings over the four
fiscal quarters before the current one, raised by 15% and rounded to the
nearest 5,000, with a floor of 50,000. Attainment then spreads around 100%, as
it does in a real team. The quotas cover those four quarters, the current
one and the next. Two reps get a week of vacation in the current quarter, so
the prorated quota and the relief show on the pages. Benchmarks apply to
everyone, with a two-month ramp for new hires.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum

from activity.models import Activity, Deal
from goals.calendar import add_months, fiscal_quarter_range
from goals.models import ActivityBenchmark, BenchmarkUnit, Quota, QuotaMetric, TimeOff
from spm.models import Membership, Organization

STEP = Decimal(5000)
FLOOR = Decimal(50_000)
UPLIFT = Decimal("1.15")
BENCHMARKS = [
    (Activity.Type.CALL, BenchmarkUnit.DAY, Decimal(8)),
    (Activity.Type.EMAIL, BenchmarkUnit.DAY, Decimal(12)),
    (Activity.Type.MEETING, BenchmarkUnit.WEEK, Decimal(5)),
]
NEW_HIRE_RAMP = [50, 75]


def _round_to_step(amount: Decimal) -> Decimal:
    steps = (amount / STEP).quantize(Decimal(1), ROUND_HALF_UP)
    return max(steps * STEP, FLOOR)


def create_demo_targets(
    *, organization: Organization, reps: list[Membership], today: dt.date
) -> int:
    """Create quotas, benchmarks and time off, and return the number of quotas.

    Call it inside the organisation's tenant context.
    """
    start_month = organization.fiscal_year_start_month
    current = fiscal_quarter_range(today, start_month)
    history_start = add_months(current.start, -12)
    bookings = defaultdict(Decimal)
    rows = (
        Deal.objects.filter(
            owner__in=reps,
            stage__is_won=True,
            archived_at__isnull=True,
            close_date__gte=history_start,
            close_date__lt=current.start,
        )
        .values("owner_id")
        .annotate(total=Sum("amount"))
        .order_by()
    )
    for row in rows:
        bookings[row["owner_id"]] = row["total"] or Decimal(0)

    quarters = [add_months(current.start, 3 * offset) for offset in range(-4, 2)]
    quotas = []
    team_totals: dict[tuple[int, dt.date], Decimal] = defaultdict(Decimal)
    for rep in reps:
        amount = _round_to_step(bookings[rep.pk] / 4 * UPLIFT)
        for start in quarters:
            quotas.append(
                Quota(
                    organization=organization,
                    member=rep,
                    metric=QuotaMetric.BOOKINGS,
                    period_start=start,
                    period_end=add_months(start, 3),
                    amount=amount,
                    currency=organization.currency,
                )
            )
            if rep.team_id is not None:
                team_totals[rep.team_id, start] += amount
    for (team_id, start), total in team_totals.items():
        # A team's quota is 5% above the sum of its reps' quotas.
        quotas.append(
            Quota(
                organization=organization,
                team_id=team_id,
                metric=QuotaMetric.BOOKINGS,
                period_start=start,
                period_end=add_months(start, 3),
                amount=_round_to_step(total * Decimal("1.05")),
                currency=organization.currency,
            )
        )
    Quota.objects.bulk_create(quotas)

    ActivityBenchmark.objects.bulk_create(
        ActivityBenchmark(
            organization=organization,
            activity_type=activity_type,
            unit=unit,
            target=target,
            ramp=NEW_HIRE_RAMP,
        )
        for activity_type, unit, target in BENCHMARKS
    )

    vacation_start = current.start + dt.timedelta(days=14)
    vacation_start += dt.timedelta(days=(7 - vacation_start.weekday()) % 7)
    TimeOff.objects.bulk_create(
        TimeOff(
            organization=organization,
            member=rep,
            kind=TimeOff.Kind.VACATION,
            start_date=vacation_start + dt.timedelta(days=7 * index),
            end_date=vacation_start + dt.timedelta(days=7 * index + 4),
        )
        for index, rep in enumerate(reps[:2])
    )
    return len(quotas)
