"""Builders of the compensation tests that use the database.

Rows are created with ``unscoped`` and an explicit organisation, so a test
sets up plans and deals without a current organisation or the audit log.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.utils import timezone

from activity.models import Deal, DealSplit, Stage
from compensation.models import (
    CompPlan,
    Draw,
    FxRate,
    PlanAssignment,
    PlanComponent,
    PlanVersion,
)
from spm.models import Membership

_counter = {"deal": 0}


def make_plan(
    organization_id: int,
    name: str = "AE plan",
    currency: str = "USD",
) -> CompPlan:
    return CompPlan.unscoped.create(
        organization_id=organization_id, name=name, currency=currency
    )


def publish_version(
    plan: CompPlan,
    components: list[dict],
    effective_from: dt.date = dt.date(2024, 1, 1),
    number: int | None = None,
    **fields,
) -> PlanVersion:
    """Create a version with ``components`` (PlanComponent fields), then publish it."""
    number = number or PlanVersion.unscoped.filter(plan=plan).count() + 1
    version = PlanVersion.unscoped.create(
        organization_id=plan.organization_id,
        plan=plan,
        number=number,
        effective_from=effective_from,
        **fields,
    )
    for order, values in enumerate(components):
        component = PlanComponent(
            organization_id=plan.organization_id, version=version, order=order, **values
        )
        component.clean()
        component.save()
    version.status = PlanVersion.Status.PUBLISHED
    version.published_at = timezone.now()
    version.save()
    return version


def flat_component(rate: str, **fields) -> dict:
    return {"name": "Commission", "kind": "flat", "params": {"rate": rate}, **fields}


def assign(
    member: Membership,
    plan: CompPlan,
    start: dt.date = dt.date(2024, 1, 1),
    end: dt.date | None = None,
) -> PlanAssignment:
    return PlanAssignment.unscoped.create(
        organization_id=member.organization_id,
        member=member,
        plan=plan,
        start_date=start,
        end_date=end,
    )


def won_deal(
    owner: Membership,
    stage: Stage,
    amount: str,
    close_date: dt.date,
    currency: str = "USD",
    splits: list[tuple[Membership, str]] | None = None,
    archived_at: dt.datetime | None = None,
) -> Deal:
    _counter["deal"] += 1
    deal = Deal.unscoped.create(
        organization_id=owner.organization_id,
        owner=owner,
        pipeline=stage.pipeline,
        stage=stage,
        name=f"Deal {_counter['deal']}",
        amount=Decimal(amount),
        currency=currency,
        close_date=close_date,
        archived_at=archived_at,
        external_source="test",
        external_id=f"C{_counter['deal']}",
    )
    for member, percent in splits or []:
        DealSplit.unscoped.create(
            organization_id=owner.organization_id,
            deal=deal,
            member=member,
            percent=Decimal(percent),
            amount=Decimal(0),
        )
    return deal


def make_rate(organization_id: int, base: str, quote: str, day: dt.date, rate: str):
    return FxRate.unscoped.create(
        organization_id=organization_id,
        base_currency=base,
        quote_currency=quote,
        date=day,
        rate=Decimal(rate),
    )


def make_draw(
    member: Membership, amount: str, start: dt.date, recoverable: bool = True
) -> Draw:
    return Draw.unscoped.create(
        organization_id=member.organization_id,
        member=member,
        amount=Decimal(amount),
        currency="USD",
        start_date=start,
        recoverable=recoverable,
    )


ATTAINMENT_TIERS = {
    "name": "Accelerator",
    "kind": "tiered",
    "params": {
        "basis": "attainment",
        "mode": "marginal",
        "tiers": [
            {"from": "0", "to": "100", "rate": "0.08"},
            {"from": "100", "rate": "0.12"},
        ],
    },
}


@pytest.fixture
def march(in_org, personas):
    """Put Rita and Rob on a 10% flat plan, with March deals. Remy has no plan."""
    won = personas.stages["Won"]
    plan = make_plan(in_org.pk)
    publish_version(plan, [flat_component("0.10")])
    assign(personas.rep1, plan)
    assign(personas.rep2, plan)
    won_deal(personas.rep1, won, "10000.00", dt.date(2024, 3, 5))
    won_deal(personas.rep1, won, "2500.00", dt.date(2024, 3, 20))
    won_deal(personas.rep2, won, "4000.00", dt.date(2024, 3, 12))
    won_deal(personas.rep3, won, "9000.00", dt.date(2024, 3, 12))
    return personas
