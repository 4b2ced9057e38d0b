"""Grouped SQL aggregates behind the metric selectors.

Each query here runs once whatever the number of members. Closed deals are
grouped by member and close month, which is finer than any page needs, so the
same rows serve the per-rep table, the bookings-by-month chart and the trend.
Open deals are grouped by owner and stage for the same reason. Sums stay
unrounded here, and the selectors round each total to the cent once, so a
total over several groups equals what one query grouped by the coarser key
would give.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING

from django.db.models import (
    Count,
    DateField,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    IntegerField,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)
from django.db.models.functions import Cast, TruncMonth

from activity.models import Activity, Deal, DealProduct, DealSplit
from spm.models import Membership

if TYPE_CHECKING:
    from measurement.selectors import MetricScope

ACTIVITY_TYPES = [value for value, _label in Activity.Type.choices]
CENT = Decimal("0.01")
ZERO = Decimal("0.00")
WON = Q(stage__is_won=True)
LOST = Q(stage__is_won=False)
# Sums of amount x probability or quantity x percent carry up to 6 decimal
# places before they are rounded to the cent.
PRODUCT_FIELD = DecimalField(max_digits=30, decimal_places=6)
QUANTITY_FIELD = DecimalField(max_digits=30, decimal_places=2)


def cents(value: Decimal | float | None) -> Decimal:
    """Round to the cent, half up. ``None`` (an empty SQL sum) is zero."""
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


def _exact(value: Decimal | float | None) -> Decimal:
    if value is None:
        return ZERO
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass
class DealSums:
    """Closed deals and credit of one member in one month, not yet rounded."""

    won: int = 0
    lost: int = 0
    unsplit_bookings: Decimal = ZERO
    split_bookings: Decimal = ZERO
    unsplit_units: Decimal = ZERO
    # Sum of quantity x split percent, so 100 is one product unit.
    split_percent_units: Decimal = ZERO
    cycle_days_total: int = 0
    cycle_deals: int = 0

    def add(self, other: DealSums) -> None:
        self.won += other.won
        self.lost += other.lost
        self.unsplit_bookings += other.unsplit_bookings
        self.split_bookings += other.split_bookings
        self.unsplit_units += other.unsplit_units
        self.split_percent_units += other.split_percent_units
        self.cycle_days_total += other.cycle_days_total
        self.cycle_deals += other.cycle_deals

    @property
    def bookings(self) -> Decimal:
        return cents(self.unsplit_bookings) + cents(self.split_bookings)

    @property
    def credited_units(self) -> Decimal:
        return cents(self.unsplit_units) + cents(self.split_percent_units / 100)


@dataclass
class OpenGroup:
    """The open deals of one owner in one stage, with unrounded sums."""

    owner_id: int
    stage_id: int
    pipeline: str
    stage: str
    deals: int
    value: Decimal
    weighted: Decimal


def _won_or_lost(scope: MetricScope, prefix: str = "") -> Q:
    """Filter deals (or rows reached through ``prefix``) closed in the scope."""
    return Q(
        **{
            f"{prefix}archived_at__isnull": True,
            f"{prefix}stage__is_closed": True,
            f"{prefix}close_date__gte": scope.start,
            f"{prefix}close_date__lt": scope.end,
        }
    )


def _close_month(date_field: str) -> Cast:
    """Return the first day of the close date's month.

    Close dates are already calendar dates in the organisation's time zone.
    The cast makes PostgreSQL return a date rather than a timestamp, which
    Python loads faster for the hundreds of groups of a year.
    """
    return Cast(TruncMonth(date_field, output_field=DateField()), DateField())


def _has_splits(deal_ref: str) -> Exists:
    return Exists(DealSplit.objects.filter(deal_id=OuterRef(deal_ref)))


def _line_quantity(deal_ref: str) -> Subquery:
    """Sum the quantities of a deal's product lines, or NULL when it has none."""
    lines = (
        DealProduct.objects.filter(deal_id=OuterRef(deal_ref))
        .values("deal_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    return Subquery(lines, output_field=QUANTITY_FIELD)


def _closed_deal_rows(scope: MetricScope) -> QuerySet:
    """Count won and lost deals, and sum unsplit credit and cycles, by owner."""
    cycle = ExpressionWrapper(
        F("close_date") - F("created_on"), output_field=DurationField()
    )
    timed = WON & Q(created_on__isnull=False)
    return (
        Deal.objects.filter(_won_or_lost(scope), owner_id__in=scope.member_ids)
        .values("owner_id", month=_close_month("close_date"))
        .annotate(
            won=Count("pk", filter=WON),
            lost=Count("pk", filter=LOST),
            unsplit_bookings=Sum("amount", filter=WON & ~_has_splits("pk")),
            cycle_total=Sum(cycle, filter=timed),
            cycle_deals=Count("pk", filter=timed),
        )
        .order_by()
    )


def _unsplit_unit_rows(scope: MetricScope) -> QuerySet:
    """Sum product quantities of won deals without splits, by deal owner.

    This is a join of its own because a line subquery per deal in the
    closed-deal query was slower on the benchmark tenant's year (bench/).
    """
    return (
        Deal.objects.filter(
            _won_or_lost(scope),
            WON,
            ~_has_splits("pk"),
            owner_id__in=scope.member_ids,
        )
        .values("owner_id", month=_close_month("close_date"))
        .annotate(units=Sum("lines__quantity"))
        .order_by()
    )


def _split_rows(scope: MetricScope) -> QuerySet:
    """Sum the stored split amounts and units of won deals, by credited member.

    The query starts from the deals so that PostgreSQL reads the closed
    deals of the period from the organisation's close-date index.
    """
    percent_units = ExpressionWrapper(
        F("splits__percent") * _line_quantity("pk"), output_field=PRODUCT_FIELD
    )
    return (
        Deal.objects.filter(
            _won_or_lost(scope),
            WON,
            splits__member_id__in=scope.member_ids,
        )
        .values("splits__member_id", month=_close_month("close_date"))
        .annotate(bookings=Sum("splits__amount"), percent_units=Sum(percent_units))
        .order_by()
    )


def deal_sums(scope: MetricScope) -> dict[tuple[int, dt.date], DealSums]:
    """Return the closed-deal sums of the scope by (member id, close month)."""
    sums: defaultdict[tuple[int, dt.date], DealSums] = defaultdict(DealSums)
    for row in _closed_deal_rows(scope):
        group = sums[row["owner_id"], row["month"]]
        group.won, group.lost = row["won"], row["lost"]
        group.unsplit_bookings = _exact(row["unsplit_bookings"])
        group.cycle_deals = row["cycle_deals"]
        if row["cycle_total"] is not None:
            group.cycle_days_total = row["cycle_total"].days
    for row in _unsplit_unit_rows(scope):
        sums[row["owner_id"], row["month"]].unsplit_units = _exact(row["units"])
    for row in _split_rows(scope):
        group = sums[row["splits__member_id"], row["month"]]
        group.split_bookings = _exact(row["bookings"])
        group.split_percent_units = _exact(row["percent_units"])
    return dict(sums)


def _activity_count(scope: MetricScope, kind: str) -> Subquery:
    activities = (
        Activity.objects.filter(
            owner_id=OuterRef("pk"),
            type=kind,
            occurred_at__gte=scope.start_at,
            occurred_at__lt=scope.end_at,
        )
        .values("owner_id")
        .annotate(count=Count("*"))
        .values("count")
    )
    return Subquery(activities, output_field=IntegerField())


def activity_counts(scope: MetricScope) -> QuerySet:
    """Count each member's activities of each type in the period.

    Rows have the member's ``pk`` and ``<type>_count``, None for no activity.
    One COUNT per member and type reads one range of the (organization,
    owner, type, occurred_at) index. On the benchmark tenant (bench/), this
    counted a year of 610,000 activities in half the time of a GROUP BY.
    """
    counts = {f"{kind}_count": _activity_count(scope, kind) for kind in ACTIVITY_TYPES}
    return (
        Membership.objects.filter(pk__in=scope.member_ids)
        .values("pk")
        .annotate(**counts)
        .order_by()
    )


def activity_rows_by_month(scope: MetricScope) -> QuerySet:
    """Count activities by type and local month of the period."""
    month = TruncMonth("occurred_at", tzinfo=scope.time_zone, output_field=DateField())
    # The type filter lets PostgreSQL read the (organization, owner, type,
    # occurred_at) index in one range per owner and type.
    return (
        Activity.objects.filter(
            owner_id__in=scope.member_ids,
            type__in=ACTIVITY_TYPES,
            occurred_at__gte=scope.start_at,
            occurred_at__lt=scope.end_at,
        )
        .values("type", month=month)
        .annotate(count=Count("*"))
        .order_by()
    )


def open_groups(member_ids: Collection[int]) -> list[OpenGroup]:
    """Return the open deals owned now by (owner, stage), whatever the close date.

    Stages come in pipeline name, stage order and id order.
    """
    weighted = ExpressionWrapper(
        F("amount") * F("stage__probability"), output_field=PRODUCT_FIELD
    )
    rows = (
        Deal.objects.filter(
            archived_at__isnull=True,
            stage__is_closed=False,
            owner_id__in=member_ids,
        )
        .values("owner_id", "stage_id", "stage__pipeline__name", "stage__name")
        # COUNT(*) needs no deal id, which the stage index leaves out.
        .annotate(deals=Count("*"), value=Sum("amount"), weighted=Sum(weighted))
        .order_by("stage__pipeline__name", "stage__order", "stage_id", "owner_id")
    )
    return [
        OpenGroup(
            owner_id=row["owner_id"],
            stage_id=row["stage_id"],
            pipeline=row["stage__pipeline__name"],
            stage=row["stage__name"],
            deals=row["deals"],
            value=_exact(row["value"]),
            weighted=_exact(row["weighted"]),
        )
        for row in rows
    ]
