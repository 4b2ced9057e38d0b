"""Reads for statement calculation, each a fixed number of queries.

Each function loads rows for a set of members or plans at once, and turns
them into the plain values of compensation.crediting and
compensation.engine, so nothing later goes back to the database per deal.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db.models import Min, Prefetch, Q

from activity.dates import period_bounds
from activity.models import Deal, DealProduct, DealSplit
from compensation.crediting import DealInput, FxRates, SplitInput
from compensation.engine.payments import Payment as EnginePayment
from compensation.engine.types import CalculationError
from compensation.models import (
    CalculationRun,
    DealOwnerShare,
    Draw,
    FxRate,
    Payment,
    PlanAssignment,
    PlanVersion,
    Statement,
    StatementLine,
)
from spm.models import Membership


def member_assignments(member_id: int, before: dt.date) -> list[PlanAssignment]:
    """Return the member's plan assignments that start before ``before``. One query."""
    return list(
        PlanAssignment.objects.filter(member_id=member_id, start_date__lt=before)
        .select_related("plan")
        .order_by("start_date", "id")
    )


def published_versions(plan_ids: Collection[int]) -> dict[int, list[PlanVersion]]:
    """Return each plan's published versions with components, oldest first.

    Two queries.
    """
    versions: dict[int, list[PlanVersion]] = defaultdict(list)
    rows = (
        PlanVersion.objects.filter(plan_id__in=plan_ids, status="published")
        .select_related("plan")
        .prefetch_related("components")
        .order_by("plan_id", "effective_from", "number")
    )
    for version in rows:
        versions[version.plan_id].append(version)
    return versions


def member_draws(member_id: int) -> list[Draw]:
    """Return the member's draws. One query."""
    return list(Draw.objects.filter(member_id=member_id).order_by("start_date", "id"))


def reporting_tree(manager_id: int) -> list[tuple[int, str, int]]:
    """Return ``(member id, name, depth)`` of everyone reporting to the manager.

    Depth 1 is a direct report. One query, over the organisation's members.
    """
    children: dict[int | None, list[tuple[int, str]]] = defaultdict(list)
    for pk, reports_to_id, name in Membership.objects.values_list(
        "pk", "reports_to_id", "display_name"
    ):
        children[reports_to_id].append((pk, name))
    tree = []
    seen = {manager_id}
    level = [manager_id]
    depth = 0
    while level:
        depth += 1
        next_level = []
        for parent in level:
            for pk, name in children.get(parent, ()):
                if pk in seen:  # a reporting loop; each member counts once
                    continue
                seen.add(pk)
                tree.append((pk, name, depth))
                next_level.append(pk)
        level = next_level
    return tree


def earliest_close_of_paid_deals(
    member_id: int, start: dt.date, end: dt.date
) -> dt.date | None:
    """Return the earliest close date of the member's deals paid in ``[start, end)``.

    One query.
    """
    return (
        Payment.objects.filter(received_on__gte=start, received_on__lt=end)
        .filter(Q(deal__owner_id=member_id) | Q(deal__splits__member_id=member_id))
        .aggregate(first=Min("deal__close_date"))["first"]
    )


def won_deals(
    member_ids: Collection[int], start: dt.date, end: dt.date, time_zone: str
) -> tuple[list[DealInput], dict[int, dt.date]]:
    """Return the won deals credited to any of the members in ``[start, end)``.

    A deal counts by its close date, or, without one, by the local date it
    moved to its won stage. The second value maps each deal that was
    archived (cancelled) after it closed to the local date of the archive.
    A deal archived on or before its close date is left out: it was never
    really won. Four queries: deals, splits, reassigned-lead shares, products.
    """
    first, last = period_bounds(start, end, time_zone)
    rows = (
        Deal.objects.filter(stage__is_won=True, amount__isnull=False)
        .filter(
            Q(close_date__gte=start, close_date__lt=end)
            | Q(
                close_date__isnull=True,
                stage_changed_at__gte=first,
                stage_changed_at__lt=last,
            )
        )
        .filter(
            Q(owner_id__in=member_ids)
            | Q(splits__member_id__in=member_ids)
            | Q(owner_shares__member_id__in=member_ids)
        )
        .select_related("pipeline", "account")
        .prefetch_related(
            Prefetch("splits", queryset=DealSplit.objects.order_by("id")),
            Prefetch(
                "owner_shares",
                queryset=DealOwnerShare.objects.order_by("position", "id"),
            ),
            Prefetch(
                "lines",
                queryset=DealProduct.objects.select_related("product").order_by("id"),
            ),
        )
        .distinct()
        .order_by("close_date", "id")
    )
    zone = ZoneInfo(time_zone)
    deals = []
    cancellations = {}
    for deal in rows:
        closed_at = None if deal.close_date else deal.stage_changed_at
        close_day = deal.close_date or closed_at.astimezone(zone).date()
        if deal.archived_at is not None:
            cancelled_on = deal.archived_at.astimezone(zone).date()
            if cancelled_on <= close_day:
                continue
            cancellations[deal.pk] = cancelled_on
        deals.append(
            DealInput(
                deal_id=deal.pk,
                name=str(deal),
                amount=deal.amount,
                currency=deal.currency,
                owner_id=deal.owner_id,
                splits=_deal_splits(deal),
                close_date=deal.close_date,
                closed_at=closed_at,
                fields={
                    "pipeline": deal.pipeline.name,
                    "account": deal.account.name if deal.account else "",
                    "account_industry": deal.account.industry if deal.account else "",
                    "product": [line.product.name for line in deal.lines.all()],
                },
            )
        )
    return deals, cancellations


def _deal_splits(deal: Deal) -> tuple[SplitInput, ...]:
    """Return the deal's own splits, or else its reassigned-lead owner shares."""
    splits = deal.splits.all() or deal.owner_shares.all()
    return tuple(SplitInput(split.member_id, split.percent) for split in splits)


def fx_rates(
    bases: Collection[str], quotes: Collection[str], start: dt.date, end: dt.date
) -> FxRates:
    """Return the rates between the currencies dated in ``[start, end)``. One query."""
    if not bases or not quotes:
        return FxRates({})
    rows = FxRate.objects.filter(
        base_currency__in=bases,
        quote_currency__in=quotes,
        date__gte=start,
        date__lt=end,
    ).values_list("base_currency", "quote_currency", "date", "rate")
    return FxRates({(base, quote, day): rate for base, quote, day, rate in rows})


def deal_payments(
    deal_currencies: dict[int, str],
) -> dict[int, tuple[EnginePayment, ...]]:
    """Return the payments of the deals, keyed by deal id. One query.

    ``deal_currencies`` maps each deal id to its currency; a payment in
    another currency is an error rather than a silent mix of units.
    """
    payments: dict[int, list[EnginePayment]] = defaultdict(list)
    rows = Payment.objects.filter(deal_id__in=deal_currencies).order_by(
        "received_on", "id"
    )
    for payment in rows:
        expected = deal_currencies[payment.deal_id]
        if payment.currency != expected:
            raise CalculationError(
                f"A payment of {payment.amount} {payment.currency} on "
                f"{payment.received_on:%Y-%m-%d} belongs to a deal in {expected}; "
                "record it in the deal's currency."
            )
        payments[payment.deal_id].append(
            EnginePayment(payment.deal_id, payment.received_on, Decimal(payment.amount))
        )
    return {deal_id: tuple(rows) for deal_id, rows in payments.items()}


# Stored statements and calculation runs, for the commission pages.


def statement_get(public_id) -> Statement | None:
    """Return the statement with its member and approver, or None. One query."""
    try:
        return (
            Statement.objects.select_related("member", "approved_by", "paid_by")
            .filter(public_id=public_id)
            .first()
        )
    except ValidationError:
        return None


def statement_lines(statement: Statement) -> list[StatementLine]:
    """Return the statement's lines in order. One query."""
    return list(
        StatementLine.objects.filter(statement=statement).order_by("order", "pk")
    )


def period_statements(
    member_ids: Collection[int], period_start: dt.date, period_end: dt.date
) -> list[Statement]:
    """Return the period's statements of these members, by name. One query."""
    return list(
        Statement.objects.filter(
            member_id__in=member_ids,
            period_start=period_start,
            period_end=period_end,
        )
        .select_related("member__user")
        .order_by("member__display_name", "pk")
    )


def member_statements(member_id: int) -> list[Statement]:
    """Return every statement of the member, newest period first. One query."""
    return list(
        Statement.objects.filter(member_id=member_id).order_by("-period_start", "pk")
    )


def statements_by_public_id(public_ids: Collection) -> list[Statement]:
    """Return the statements with these public ids, and their members. One query."""
    return list(
        Statement.objects.filter(public_id__in=public_ids)
        .select_related("member")
        .order_by("member__display_name", "pk")
    )


def calculation_run_latest(
    period_start: dt.date, period_end: dt.date
) -> CalculationRun | None:
    """Return the period's most recent calculation run, or None. One query."""
    return (
        CalculationRun.objects.filter(period_start=period_start, period_end=period_end)
        .order_by("-created_at", "-pk")
        .first()
    )


def calculation_run_get(public_id) -> CalculationRun | None:
    try:
        return CalculationRun.objects.filter(public_id=public_id).first()
    except ValidationError:
        return None
