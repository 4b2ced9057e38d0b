"""Builders for deals, splits and activities in the measurement tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from django.utils import timezone

from activity.models import Activity, Deal, DealProduct, DealSplit, Product, Stage
from spm.models import Membership

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
