"""Reads for statement calculation, each a fixed number of queries.

Each function loads rows for a set of members or plans at once, and turns
them into the plain values of compensation.crediting and
compensation.engine, so nothing later goes back to the database per deal.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from decimal import Decimal
from zoneinfo import ZoneInfo

from django.core.exceptions import ValidationError
from django.db import connection
from django.db.models import BooleanField, Count, Min, Prefetch, Q, QuerySet, Sum
from django.db.models.expressions import RawSQL

from activity.dates import period_bounds
from activity.models import Deal, DealProduct, DealSplit, Product
from compensation import line_blocks
from compensation.crediting import DealInput, Document, FxRates, SplitInput
from compensation.engine.clawback import full_months_between
from compensation.engine.payments import Payment as EnginePayment
from compensation.engine.types import CalculationError, LineKind, frozen_instance
from compensation.models import (
    ApprovalRun,
    CalculationRun,
    DealOwnerShare,
    Draw,
    FxRate,
    Payment,
    PlanAssignment,
    PlanVersion,
    Statement,
    StatementLine,
    StatementLineBlock,
)
from spm.models import Membership
from spm.money import CENT
from spm.tenancy import get_current_organization


def assignments_by_member(
    member_ids: Collection[int], before: dt.date
) -> dict[int, list[PlanAssignment]]:
    """Return each member's plan assignments that start before ``before``. One query.

    Each member's list is ordered by start date, then id.
    """
    by_member: dict[int, list[PlanAssignment]] = defaultdict(list)
    rows = (
        PlanAssignment.objects.filter(member_id__in=member_ids, start_date__lt=before)
        .select_related("plan")
        .order_by("start_date", "id")
    )
    for row in rows:
        by_member[row.member_id].append(row)
    return by_member


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


def draws_by_member(member_ids: Collection[int]) -> dict[int, list[Draw]]:
    """Return each member's draws, by start date then id. One query."""
    by_member: dict[int, list[Draw]] = defaultdict(list)
    rows = Draw.objects.filter(member_id__in=member_ids).order_by("start_date", "id")
    for draw in rows:
        by_member[draw.member_id].append(draw)
    return by_member


ReportsTo = dict[int | None, list[tuple[int, str]]]


def reports_to_map() -> ReportsTo:
    """Return ``(member id, name)`` of each manager's direct reports. One query.

    The key None lists the members with no manager.
    """
    children: ReportsTo = defaultdict(list)
    for pk, reports_to_id, name in Membership.objects.values_list(
        "pk", "reports_to_id", "display_name"
    ):
        children[reports_to_id].append((pk, name))
    return children


def reporting_tree(
    manager_id: int, children: ReportsTo | None = None
) -> list[tuple[int, str, int]]:
    """Return ``(member id, name, depth)`` of everyone reporting to the manager.

    Depth 1 is a direct report. One query over the organisation's members,
    or none when ``children`` (``reports_to_map``) is given.
    """
    if children is None:
        children = reports_to_map()
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


def earliest_close_of_paid_deals_by_member(
    member_ids: Collection[int], start: dt.date, end: dt.date
) -> dict[int, dt.date]:
    """Return each member's earliest close date of their deals paid in ``[start, end)``.

    A deal is the member's when they own it or have a split of it, as in
    ``earliest_close_of_paid_deals``. Members with no such deal are left
    out. One query.
    """
    wanted = set(member_ids)
    rows = (
        Payment.objects.filter(received_on__gte=start, received_on__lt=end)
        .filter(Q(deal__owner_id__in=wanted) | Q(deal__splits__member_id__in=wanted))
        .values_list("deal__close_date", "deal__owner_id", "deal__splits__member_id")
    )
    earliest: dict[int, dt.date] = {}
    for close_date, owner_id, split_member_id in rows:
        if close_date is None:
            continue
        for member_id in {owner_id, split_member_id} & wanted:
            if member_id not in earliest or close_date < earliest[member_id]:
                earliest[member_id] = close_date
    return earliest


@dataclass
class WonDeals:
    """Won deals of a set of members, in credit order, with who each relates to.

    ``close_days`` is each deal's local credit date, in the order of
    ``deals``. ``positions`` maps a member id to the indexes in ``deals`` of
    the deals that member owns or has a split or reassigned-lead share of.
    ``cancellations`` maps a cancelled deal's id to the local date it was
    archived.
    """

    deals: list[DealInput] = field(default_factory=list)
    close_days: list[dt.date] = field(default_factory=list)
    positions: dict[int, list[int]] = field(default_factory=dict)
    cancellations: dict[int, dt.date] = field(default_factory=dict)

    def of_members(
        self, member_ids: Collection[int], start: dt.date
    ) -> tuple[list[DealInput], dict[int, dt.date]]:
        """Return the deals of any of the members credited on or after ``start``.

        The second value contains the cancellations among those deals, as
        ``won_deals`` returns them.
        """
        indexes: set[int] = set()
        for member_id in member_ids:
            indexes.update(self.positions.get(member_id, ()))
        deals = []
        cancellations = {}
        for index in sorted(indexes):
            if self.close_days[index] < start:
                continue
            deal = self.deals[index]
            deals.append(deal)
            if deal.deal_id in self.cancellations:
                cancellations[deal.deal_id] = self.cancellations[deal.deal_id]
        return deals, cancellations


def _related_deal_ids(member_ids: list[int]) -> RawSQL:
    """Return a subquery of the ids of deals the members own or share.

    A UNION lets PostgreSQL use the owner and member indexes for a few
    members. An OR across the three tables made it scan every deal.
    """
    tables = [
        (Deal._meta.db_table, "id", "owner_id"),
        (DealSplit._meta.db_table, "deal_id", "member_id"),
        (DealOwnerShare._meta.db_table, "deal_id", "member_id"),
    ]
    parts, params = [], []
    for table, column, member in tables:
        condition, condition_params = id_in_sql(member, member_ids)
        parts.append(f"SELECT {column} FROM {table} WHERE {condition}")
        params += condition_params
    return RawSQL(" UNION ".join(parts), params)


def id_in_sql(column: str, ids: list[int]) -> tuple[str, list]:
    """Return the condition "``column`` is one of ``ids``", and its parameters.

    One parameter carries every id: an array on PostgreSQL, and a JSON
    array on SQLite (the demo and the tests without PostgreSQL).
    """
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s::bigint[])", [list(ids)]
    return f"{column} IN (SELECT value FROM json_each(%s))", [json.dumps(list(ids))]


def id_list_sql(ids: list[int]) -> tuple[str, list]:
    """Return a subquery of one ``id`` column over ``ids``, and its parameters.

    As ``id_in_sql``, one parameter carries every id.
    """
    if connection.vendor == "postgresql":
        return "SELECT unnest(%s::bigint[]) AS id", [list(ids)]
    return "SELECT value AS id FROM json_each(%s)", [json.dumps(list(ids))]


def _deal_details(deal_ids: list[int]) -> tuple[dict, dict, dict]:
    """Return the splits, reassigned-lead shares and product names of the deals.

    Each result maps a deal id to a list: of ``(member id, percent)`` for
    splits (by id) and shares (by position, then id), and of names for
    products (by id). One query, a UNION ALL of the three tables, in raw
    SQL because compiling it with the ORM took longer than running it. It
    filters by the current organisation as the tenant managers do.
    """
    splits: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    shares: dict[int, list[tuple[int, Decimal]]] = defaultdict(list)
    products: dict[int, list[str]] = defaultdict(list)
    if not deal_ids:
        return splits, shares, products
    organization_id = get_current_organization().pk
    quote = connection.ops.quote_name
    split_table = quote(DealSplit._meta.db_table)
    share_table = quote(DealOwnerShare._meta.db_table)
    line_table = quote(DealProduct._meta.db_table)
    product_table = quote(Product._meta.db_table)
    ids_sql, ids_params = id_list_sql(deal_ids)
    sql = (
        f"WITH wanted AS (SELECT id AS deal_id FROM ({ids_sql}) AS ids) "
        "SELECT 'split', split.deal_id, member_id, percent, NULL, 0, split.id "
        f"FROM {split_table} AS split JOIN wanted USING (deal_id) "
        "WHERE organization_id = %s "
        "UNION ALL "
        "SELECT 'share', share.deal_id, member_id, percent, NULL, position, share.id "
        f"FROM {share_table} AS share JOIN wanted USING (deal_id) "
        "WHERE organization_id = %s "
        "UNION ALL "
        "SELECT 'product', line.deal_id, NULL, NULL, product.name, 0, line.id "
        f"FROM {line_table} AS line JOIN wanted USING (deal_id) "
        f"JOIN {product_table} AS product ON product.id = line.product_id "
        "WHERE line.organization_id = %s"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, ids_params + [organization_id] * 3)
        rows = cursor.fetchall()
    found: dict[str, list[tuple]] = defaultdict(list)
    for kind, deal_id, member_id, percent, name, position, row_id in rows:
        found[kind].append((position, row_id, deal_id, member_id, percent, name))
    for _, _, deal_id, member_id, percent, _ in sorted(found["split"]):
        splits[deal_id].append((member_id, percent))
    for _, _, deal_id, member_id, percent, _ in sorted(found["share"]):
        shares[deal_id].append((member_id, percent))
    for _, _, deal_id, _, _, name in sorted(found["product"]):
        products[deal_id].append(name)
    return splits, shares, products


def won_deals_of_members(
    member_ids: Collection[int], start: dt.date, end: dt.date, time_zone: str
) -> WonDeals:
    """Load the won deals credited to any of the members in ``[start, end)``.

    The deals and their dates follow the rules of ``won_deals``, but each
    deal is loaded once for all members. Two queries: the deals, then
    their splits, reassigned-lead shares and products together (see
    ``_deal_details``).
    """
    first, last = period_bounds(start, end, time_zone)
    member_ids = list(member_ids)
    deal_rows = (
        Deal.objects.filter(stage__is_won=True, amount__isnull=False)
        .filter(
            Q(close_date__gte=start, close_date__lt=end)
            | Q(
                close_date__isnull=True,
                stage_changed_at__gte=first,
                stage_changed_at__lt=last,
            )
        )
        .filter(pk__in=_related_deal_ids(member_ids))
    )
    zone = ZoneInfo(time_zone)
    wanted = set(member_ids)
    found = WonDeals()
    positions: dict[int, list[int]] = defaultdict(list)
    rows = list(
        deal_rows.order_by("close_date", "id").values_list(
            "pk",
            "name",
            "external_id",
            "public_id",
            "amount",
            "currency",
            "owner_id",
            "close_date",
            "stage_changed_at",
            "archived_at",
            "pipeline__name",
            "account_id",
            "account__name",
            "account__industry",
            "deal_type",
            "segment",
        )
    )
    splits, shares, products = _deal_details([row[0] for row in rows])
    for (
        pk,
        name,
        external_id,
        public_id,
        amount,
        currency,
        owner_id,
        close_date,
        stage_changed_at,
        archived_at,
        pipeline_name,
        account_id,
        account_name,
        account_industry,
        deal_type,
        segment,
    ) in rows:
        closed_at = None if close_date else stage_changed_at
        close_day = close_date or closed_at.astimezone(zone).date()
        if archived_at is not None:
            cancelled_on = archived_at.astimezone(zone).date()
            if cancelled_on <= close_day:
                continue
            found.cancellations[pk] = cancelled_on
        deal_splits = ()
        if pk in splits or pk in shares:
            deal_splits = tuple(
                SplitInput(member, percent)
                for member, percent in splits.get(pk) or shares[pk]
            )
        index = len(found.deals)
        # Every field of DealInput, as frozen_instance requires.
        found.deals.append(
            frozen_instance(
                DealInput,
                {
                    "deal_id": pk,
                    # The same text as Deal.__str__.
                    "name": name or external_id or str(public_id),
                    "amount": amount,
                    "currency": currency,
                    "owner_id": owner_id,
                    "splits": deal_splits,
                    "close_date": close_date,
                    "closed_at": closed_at,
                    "document": Document.DEAL,
                    "fields": {
                        "pipeline": pipeline_name,
                        "account": account_name if account_id else "",
                        "account_industry": account_industry if account_id else "",
                        "deal_type": deal_type,
                        "segment": segment,
                        "product": products.get(pk, []),
                    },
                },
            )
        )
        found.close_days.append(close_day)
        if pk not in splits and pk not in shares:
            if owner_id in wanted:
                positions[owner_id].append(index)
            continue
        related = {owner_id}
        related.update(member for member, _ in splits.get(pk, ()))
        related.update(member for member, _ in shares.get(pk, ()))
        for member_id in related & wanted:
            positions[member_id].append(index)
    found.positions = dict(positions)
    return found


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
                    "deal_type": deal.deal_type,
                    "segment": deal.segment,
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


@dataclass
class DealPayments:
    """Payments of many deals, and those recorded in a currency not the deal's."""

    by_deal: dict[int, tuple[EnginePayment, ...]]
    # (deal id, message) of each payment in a currency other than its deal's,
    # in the order of receipt.
    mismatches: list[tuple[int, str]]

    def of_deals(
        self, deal_ids: Collection[int]
    ) -> dict[int, tuple[EnginePayment, ...]]:
        """Return the payments of these deals, as ``deal_payments`` does.

        Raises CalculationError for the first payment among them in another
        currency than its deal.
        """
        for deal_id, message in self.mismatches:
            if deal_id in deal_ids:
                raise CalculationError(message)
        return {
            deal_id: self.by_deal[deal_id]
            for deal_id in deal_ids
            if deal_id in self.by_deal
        }


def payments_of_deals(deal_currencies: dict[int, str]) -> DealPayments:
    """Load the payments of the deals, keyed by deal id. One query.

    ``deal_currencies`` maps each deal id to its currency. A payment in
    another currency is kept as a mismatch, so only the statements that
    credit that deal fail.
    """
    by_deal: dict[int, list[EnginePayment]] = defaultdict(list)
    mismatches = []
    deal_filter_sql, deal_filter_params = id_in_sql(
        "compensation_payment.deal_id", list(deal_currencies)
    )
    rows = (
        Payment.objects.alias(
            wanted=RawSQL(
                deal_filter_sql,
                deal_filter_params,
                output_field=BooleanField(),
            )
        )
        .filter(wanted=True)
        .order_by("received_on", "id")
    )
    for payment in rows:
        expected = deal_currencies[payment.deal_id]
        if payment.currency != expected:
            mismatches.append(
                (
                    payment.deal_id,
                    f"A payment of {payment.amount} {payment.currency} on "
                    f"{payment.received_on:%Y-%m-%d} belongs to a deal in "
                    f"{expected}; record it in the deal's currency.",
                )
            )
            continue
        by_deal[payment.deal_id].append(
            EnginePayment(payment.deal_id, payment.received_on, Decimal(payment.amount))
        )
    return DealPayments(
        {deal_id: tuple(rows) for deal_id, rows in by_deal.items()}, mismatches
    )


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
    """Return the statement's lines in order, from its block and rows. Two queries.

    A line from the block is an unsaved StatementLine with its public id.
    """
    rows = list(
        StatementLine.objects.filter(statement=statement).order_by("order", "pk")
    )
    block = line_blocks.block_of(statement)
    if block is None:
        return rows
    # The sort is stable, so rows of one order keep their id order.
    return sorted(
        line_blocks.decode(block, statement) + rows, key=lambda line: line.order
    )


def period_statements(
    member_ids: Collection[int], period_start: dt.date, period_end: dt.date
) -> list[Statement]:
    """Return the period's statements of these members, by name. One query."""
    return list(period_statements_query(member_ids, period_start, period_end))


def period_statements_query(
    member_ids: Collection[int],
    period_start: dt.date,
    period_end: dt.date,
    status: str = "",
) -> QuerySet[Statement]:
    """Return the period's statements of these members, by name, for paging.

    With ``status``, only the statements of that status.
    """
    statements = Statement.objects.filter(
        member_id__in=member_ids, period_start=period_start, period_end=period_end
    )
    if status:
        statements = statements.filter(status=status)
    return statements.select_related("member__user").order_by(
        "member__display_name", "pk"
    )


@dataclass(frozen=True)
class StatusSummary:
    """The number of a period's statements of one status, and their totals."""

    status: str
    label: str
    count: int
    # (currency, total), by currency.
    totals: list[tuple[str, Decimal]]


def period_summary(
    member_ids: Collection[int], period_start: dt.date, period_end: dt.date
) -> list[StatusSummary]:
    """Count the period's statements of these members by status, with totals.

    Every status is listed, in the order draft, approved, paid, also with no
    statement. The totals are by currency, since plans may pay in several.
    One query.
    """
    rows = (
        Statement.objects.filter(
            member_id__in=member_ids, period_start=period_start, period_end=period_end
        )
        .order_by()
        .values_list("status", "currency")
        .annotate(count=Count("pk"), total=Sum("total"))
    )
    counts: dict[str, int] = defaultdict(int)
    totals: dict[str, list[tuple[str, Decimal]]] = defaultdict(list)
    for status, currency, count, total in sorted(rows):
        counts[status] += count
        # SQLite's SUM drops trailing zeros, so each total gets its cents.
        totals[status].append((currency, total.quantize(CENT)))
    return [
        StatusSummary(status, label, counts[status], totals[status])
        for status, label in Statement.Status.choices
    ]


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


def drafts_to_approve_query(
    viewer: Membership,
    member_ids: Collection[int],
    period_start: dt.date,
    period_end: dt.date,
) -> QuerySet[Statement]:
    """Return the period's drafts that ``viewer`` may approve, by name.

    ``member_ids`` is the viewer's ``visible_member_ids``. The filter is the
    rule of ``services_statements.can_approve``: admins and managers approve
    the statements they see, except their own, and reps approve none.
    """
    if not (viewer.is_admin or viewer.is_manager):
        return Statement.objects.none()
    return period_statements_query(
        member_ids, period_start, period_end, Statement.Status.DRAFT
    ).exclude(member_id=viewer.pk)


def _approval_runs_seen_by(viewer: Membership) -> QuerySet[ApprovalRun]:
    """Return the approval runs that ``viewer`` may see.

    Admins see every member's runs, managers only their own.
    """
    runs = ApprovalRun.objects.select_related("requested_by")
    if not viewer.is_admin:
        runs = runs.filter(requested_by=viewer)
    return runs


def approval_run_latest(
    viewer: Membership, period_start: dt.date, period_end: dt.date
) -> ApprovalRun | None:
    """Return the period's most recent approval run that ``viewer`` may see, or None.

    One query.
    """
    return (
        _approval_runs_seen_by(viewer)
        .filter(period_start=period_start, period_end=period_end)
        .order_by("-created_at", "-pk")
        .first()
    )


def approval_run_get(viewer: Membership, public_id) -> ApprovalRun | None:
    """Return the approval run with ``public_id`` if ``viewer`` may see it, or None."""
    try:
        return _approval_runs_seen_by(viewer).filter(public_id=public_id).first()
    except ValidationError:
        return None


# Commission on deals the CRM archived


@dataclass
class ArchivedDealPayout:
    """Commission paid to one member on a deal archived in the CRM.

    ``paid`` sums the deal's commission, SPIFF and payment lines on approved
    and paid statements. ``taken_back`` sums its clawback lines on any
    statement, and is zero or negative.
    """

    deal_name: str
    member_name: str
    archived_on: dt.date
    currency: str
    paid: Decimal = Decimal(0)
    taken_back: Decimal = Decimal(0)
    credit_date: dt.date | None = None
    plan_version: str = ""
    clawback: str = ""
    clawback_term_months: int | None = None

    @property
    def status(self) -> str:
        """Return what became of the payment, in words an admin can act on."""
        if self.taken_back:
            return "Taken back"
        if not self.clawback or self.credit_date is None:
            return "Kept, because the plan takes nothing back: review"
        served = full_months_between(self.credit_date, self.archived_on)
        if served >= self.clawback_term_months:
            return (
                f"Kept, because the deal was archived after the "
                f"{self.clawback_term_months}-month term"
            )
        return (
            f"Taken back when {self.archived_on:%B %Y} is calculated, "
            f"because the plan takes back {PlanVersion.Clawback(self.clawback).label}"
        )


def archived_deal_payouts(
    member_ids: Collection[int], period_start: dt.date, period_end: dt.date
) -> list[ArchivedDealPayout]:
    """Return the commission paid on deals archived in the CRM during the period.

    A deal counts when its ``archived_at`` falls in the period, in the
    organisation's time zone, and these members were paid on it. Sorted by
    archive date, then deal and member name. Two queries, plus one per draft
    block that takes back one of the deals.
    """
    organization = get_current_organization()
    start, end = period_bounds(period_start, period_end, organization.time_zone)
    zone = ZoneInfo(organization.time_zone)
    locked = (Statement.Status.APPROVED, Statement.Status.PAID)
    rows = (
        StatementLine.objects.filter(
            statement__member_id__in=member_ids,
            deal__archived_at__gte=start,
            deal__archived_at__lt=end,
            line_type__in=[*LineKind.PAID_PER_DEAL, LineKind.CLAWBACK],
        )
        .filter(Q(line_type=LineKind.CLAWBACK) | Q(statement__status__in=locked))
        .values_list(
            "deal_id",
            "statement__member_id",
            "deal_name",
            "statement__member__display_name",
            "deal__archived_at",
            "statement__currency",
            "line_type",
            "amount",
            "credit_date",
            "plan_version_label",
            "plan_version__clawback",
            "plan_version__clawback_term_months",
        )
        .order_by("credit_date", "pk")
    )
    payouts: dict[tuple[int, int], ArchivedDealPayout] = {}
    for (
        deal_id,
        member_id,
        deal_name,
        member_name,
        archived_at,
        currency,
        line_type,
        amount,
        credit_date,
        plan_version,
        clawback,
        term_months,
    ) in rows:
        payout = payouts.get((deal_id, member_id))
        if payout is None:
            payout = payouts[deal_id, member_id] = ArchivedDealPayout(
                deal_name=deal_name,
                member_name=member_name,
                archived_on=archived_at.astimezone(zone).date(),
                currency=currency,
            )
        if line_type == LineKind.CLAWBACK:
            payout.taken_back += amount
            continue
        payout.paid += amount
        if payout.credit_date is None:
            # The first payment's date and terms, as the clawback reads them.
            payout.credit_date = credit_date
            payout.plan_version = plan_version
            payout.clawback = clawback or ""
            payout.clawback_term_months = term_months
    _block_clawbacks(payouts, member_ids)
    found = [payout for payout in payouts.values() if payout.paid]
    found.sort(key=lambda p: (p.archived_on, p.deal_name, p.member_name))
    return found


def _block_clawbacks(
    payouts: dict[tuple[int, int], ArchivedDealPayout], member_ids: Collection[int]
) -> None:
    """Add the clawback lines of draft blocks to the payouts of their deals.

    Only blocks whose clawback deals include a payout's deal are read. One
    query, plus one per such block.
    """
    deal_ids = {deal_id for deal_id, _ in payouts}
    if not deal_ids:
        return
    blocks = (
        StatementLineBlock.objects.filter(statement__member_id__in=member_ids)
        .exclude(clawback_deal_ids=[])
        .select_related("statement")
        .defer("lines")
    )
    for block in blocks:
        if deal_ids.isdisjoint(block.clawback_deal_ids):
            continue
        for line in line_blocks.decode(block, block.statement):
            payout = payouts.get((line.deal_id, block.statement.member_id))
            if payout is not None and line.line_type == LineKind.CLAWBACK:
                payout.taken_back += line.amount
