"""Builders for deals, splits, activities and goals in the measurement tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from activity.models import (
    Activity,
    Deal,
    DealProduct,
    DealSplit,
    DealStageChange,
    Product,
    Stage,
)
from goals.models import ActivityBenchmark, BenchmarkUnit, Quota, QuotaMetric, TimeOff
from spm.models import Membership, Team

_counter = {"deal": 0, "activity": 0}


def make_deal(
    owner: Membership,
    stage: Stage,
    amount: str | None,
    close_date: dt.date | None = None,
    created_on: dt.date | None = None,
    archived: bool = False,
    external_id: str = "",
) -> Deal:
    """Create a deal of ``owner``'s organisation in ``stage``."""
    _counter["deal"] += 1
    return Deal.unscoped.create(
        organization_id=owner.organization_id,
        owner=owner,
        pipeline=stage.pipeline,
        stage=stage,
        amount=None if amount is None else Decimal(amount),
        currency="USD",
        close_date=close_date,
        created_on=created_on,
        archived_at=timezone.now() if archived else None,
        external_source="test",
        external_id=external_id or f"T{_counter['deal']}",
    )


def make_stage_change(
    deal: Deal, to_stage: Stage, changed_at: dt.datetime
) -> DealStageChange:
    """Record ``deal`` entering ``to_stage`` at ``changed_at``, from the stage
    of its latest recorded change."""
    previous = (
        DealStageChange.unscoped.filter(deal=deal).order_by("changed_at", "pk").last()
    )
    return DealStageChange.unscoped.create(
        organization_id=deal.organization_id,
        deal=deal,
        from_stage=previous.to_stage if previous else None,
        to_stage=to_stage,
        changed_at=changed_at,
        source="test",
    )


def make_split(deal: Deal, member: Membership, percent: str, amount: str) -> DealSplit:
    return DealSplit.unscoped.create(
        organization_id=deal.organization_id,
        deal=deal,
        member=member,
        percent=Decimal(percent),
        amount=Decimal(amount),
    )


def make_line(deal: Deal, product: Product, quantity: str) -> DealProduct:
    return DealProduct.unscoped.create(
        organization_id=deal.organization_id,
        deal=deal,
        product=product,
        quantity=Decimal(quantity),
    )


def make_product(organization_id: int, name: str) -> Product:
    return Product.unscoped.create(organization_id=organization_id, name=name)


def make_activity(
    owner: Membership, occurred_at: dt.datetime, kind: str = Activity.Type.CALL
) -> Activity:
    _counter["activity"] += 1
    return Activity.unscoped.create(
        organization_id=owner.organization_id,
        owner=owner,
        type=kind,
        occurred_at=occurred_at,
        external_source="test",
        external_id=f"A{_counter['activity']}",
    )


def make_quota(
    member: Membership,
    start: dt.date,
    end: dt.date,
    amount: str,
    metric: str = QuotaMetric.BOOKINGS,
) -> Quota:
    """Create ``member``'s quota for ``[start, end)``."""
    return Quota.unscoped.create(
        organization_id=member.organization_id,
        member=member,
        metric=metric,
        period_start=start,
        period_end=end,
        amount=Decimal(amount),
        currency="" if metric == QuotaMetric.DEAL_COUNT else "USD",
    )


def make_team_quota(team: Team, start: dt.date, end: dt.date, amount: str) -> Quota:
    return Quota.unscoped.create(
        organization_id=team.organization_id,
        team=team,
        period_start=start,
        period_end=end,
        amount=Decimal(amount),
        currency="USD",
    )


def make_benchmark(
    organization_id: int,
    kind: str,
    target: str,
    unit: str = BenchmarkUnit.DAY,
    ramp: list | None = None,
) -> ActivityBenchmark:
    """Create a benchmark that applies to every member of the organisation."""
    return ActivityBenchmark.unscoped.create(
        organization_id=organization_id,
        activity_type=kind,
        unit=unit,
        target=Decimal(target),
        ramp=ramp or [],
    )


def make_time_off(
    member: Membership,
    start: dt.date,
    last: dt.date,
    kind: str = TimeOff.Kind.VACATION,
) -> TimeOff:
    """Create time off from ``start`` to ``last``, both included."""
    return TimeOff.unscoped.create(
        organization_id=member.organization_id,
        member=member,
        kind=kind,
        start_date=start,
        end_date=last,
    )
