"""Per-rep metrics, each defined once and aggregated in SQL.

Every function here runs a fixed number of queries whatever the number of
members, because each metric is one or two ``values(<key>).annotate(...)``
queries grouped by member or by month. Pages, the CSV export and the API all
read these, so they show the same numbers. Definitions are documented in
docs/metrics.md.

Dates are calendar dates in the organisation's time zone, and a period is the
half-open range ``[start, end)``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal
from zoneinfo import ZoneInfo

from django.db.models import (
    Count,
    DateField,
    DecimalField,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.expressions import Expression
from django.db.models.functions import TruncMonth

from activity.models import Activity, Deal, DealProduct, DealSplit
from goals.calendar import months_in
from spm.models import Membership, Team

GroupBy = Literal["member", "month"]
BY_MEMBER: GroupBy = "member"
BY_MONTH: GroupBy = "month"

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
ZERO = Decimal("0.00")
ACTIVITY_TYPES = [value for value, _label in Activity.Type.choices]

WON = Q(stage__is_won=True)
LOST = Q(stage__is_won=False)
# Sums of amount x probability or quantity x percent carry up to 6 decimal
# places before they are rounded to the cent in Python.
PRODUCT_FIELD = DecimalField(max_digits=30, decimal_places=6)


@dataclass(frozen=True)
class MetricScope:
    """The members and the half-open date range ``[start, end)`` to measure."""

    member_ids: Collection[int]
    start: dt.date
    end: dt.date
    time_zone: ZoneInfo

    @property
    def start_at(self) -> dt.datetime:
        """Return midnight at the start date in the organisation's time zone."""
        return dt.datetime.combine(self.start, dt.time.min, tzinfo=self.time_zone)

    @property
    def end_at(self) -> dt.datetime:
        return dt.datetime.combine(self.end, dt.time.min, tzinfo=self.time_zone)


@dataclass
class Scorecard:
    """One member's (or one month's) numbers for a period.

    Counts start at 0 because zero deals is a fact. Win rate and average
    cycle are ``None`` ("no data") when nothing was closed or won.
    """

    won: int = 0
    lost: int = 0
    bookings: Decimal = ZERO
    credited_units: Decimal = ZERO
    cycle_days_total: int = 0
    cycle_deals: int = 0
    open_deals: int = 0
    pipeline_value: Decimal = ZERO
    weighted_pipeline: Decimal = ZERO
    activities: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(ACTIVITY_TYPES, 0)
    )

    @property
    def closed(self) -> int:
        return self.won + self.lost

    @property
    def win_rate(self) -> Decimal | None:
        """Return won / (won + lost) as a percentage to 0.1, or ``None``."""
        if not self.closed:
            return None
        return (Decimal(100 * self.won) / self.closed).quantize(TENTH, ROUND_HALF_UP)

    @property
    def avg_cycle_days(self) -> Decimal | None:
        """Return the mean days from creation to close of won deals, to 0.1."""
        if not self.cycle_deals:
            return None
        mean = Decimal(self.cycle_days_total) / self.cycle_deals
        return mean.quantize(TENTH, ROUND_HALF_UP)

    @property
    def activity_total(self) -> int:
        return sum(self.activities.values())

    @property
    def has_numbers(self) -> bool:
        return bool(
            self.closed
            or self.bookings
            or self.credited_units
            or self.open_deals
            or self.activity_total
        )


@dataclass
class RepRow:
    member: Membership
    card: Scorecard

    @property
    def email(self) -> str:
        """Return the member's email, or their login's when the member has none."""
        if self.member.email or self.member.user is None:
            return self.member.email
        return self.member.user.email


@dataclass
class StageTotals:
    pipeline: str
    stage: str
    deals: int
    value: Decimal
    weighted: Decimal


def _cents(value: Decimal | float | None) -> Decimal:
    if value is None:
        return ZERO
    return Decimal(str(value)).quantize(CENT, ROUND_HALF_UP)


def _group_key(by: GroupBy, member_field: str, date_field: str) -> Expression:
    if by == BY_MEMBER:
        return F(member_field)
    return TruncMonth(date_field, output_field=DateField())


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


def _has_splits(deal_ref: str) -> Exists:
    return Exists(DealSplit.objects.filter(deal_id=OuterRef(deal_ref)))


def _closed_deal_rows(scope: MetricScope, by: GroupBy) -> QuerySet:
    """Count won and lost deals, sum their cycles and unsplit bookings, by owner."""
    cycle = ExpressionWrapper(
        F("close_date") - F("created_on"), output_field=DurationField()
    )
    timed = WON & Q(created_on__isnull=False)
    return (
        Deal.objects.filter(_won_or_lost(scope), owner_id__in=scope.member_ids)
        .values(key=_group_key(by, "owner_id", "close_date"))
        .annotate(
            won=Count("pk", filter=WON),
            lost=Count("pk", filter=LOST),
            unsplit_bookings=Sum("amount", filter=WON & ~_has_splits("pk")),
            cycle_total=Sum(cycle, filter=timed),
            cycle_deals=Count("pk", filter=timed),
        )
        .order_by()
    )


def _credited_splits(scope: MetricScope) -> QuerySet:
    return DealSplit.objects.filter(
        _won_or_lost(scope, "deal__"),
        deal__stage__is_won=True,
        member_id__in=scope.member_ids,
    )


def _split_booking_rows(scope: MetricScope, by: GroupBy) -> QuerySet:
    """Sum the stored split amounts of won deals, by credited member."""
    return (
        _credited_splits(scope)
        .values(key=_group_key(by, "member_id", "deal__close_date"))
        .annotate(bookings=Sum("amount"))
        .order_by()
    )


def _unsplit_unit_rows(scope: MetricScope, by: GroupBy) -> QuerySet:
    """Sum product quantities of won deals without splits, by deal owner."""
    return (
        DealProduct.objects.filter(
            _won_or_lost(scope, "deal__"),
            ~_has_splits("deal_id"),
            deal__stage__is_won=True,
            deal__owner_id__in=scope.member_ids,
        )
        .values(key=_group_key(by, "deal__owner_id", "deal__close_date"))
        .annotate(units=Sum("quantity"))
        .order_by()
    )


def _split_unit_rows(scope: MetricScope, by: GroupBy) -> QuerySet:
    """Sum quantity x split percent over won deals' lines, by credited member.

    The sum is in percent units, so divide it by 100 for product units.
    """
    weighted = ExpressionWrapper(
        F("deal__lines__quantity") * F("percent"), output_field=PRODUCT_FIELD
    )
    return (
        _credited_splits(scope)
        .values(key=_group_key(by, "member_id", "deal__close_date"))
        .annotate(percent_units=Sum(weighted))
        .order_by()
    )


def _activity_rows(scope: MetricScope, by: GroupBy) -> QuerySet:
    """Count activities by owner and type inside the period's local midnights."""
    if by == BY_MEMBER:
        key = F("owner_id")
    else:
        key = TruncMonth(
            "occurred_at", tzinfo=scope.time_zone, output_field=DateField()
        )
    return (
        Activity.objects.filter(
            owner_id__in=scope.member_ids,
            occurred_at__gte=scope.start_at,
            occurred_at__lt=scope.end_at,
        )
        .values("type", key=key)
        .annotate(count=Count("pk"))
        .order_by()
    )


def _open_pipeline_rows(member_ids: Collection[int]) -> QuerySet:
    """Count and sum the open deals owned now, whatever their close date."""
    weighted = ExpressionWrapper(
        F("amount") * F("stage__probability"), output_field=PRODUCT_FIELD
    )
    return (
        Deal.objects.filter(
            archived_at__isnull=True,
            stage__is_closed=False,
            owner_id__in=member_ids,
        )
        .values("owner_id")
        .annotate(deals=Count("pk"), value=Sum("amount"), weighted=Sum(weighted))
        .order_by()
    )


def _collect(scope: MetricScope, by: GroupBy, cards: dict) -> None:
    """Add the period metrics of every group to ``cards``, keyed by group."""

    def card(key) -> Scorecard:
        return cards.setdefault(key, Scorecard())

    for row in _closed_deal_rows(scope, by):
        target = card(row["key"])
        target.won, target.lost = row["won"], row["lost"]
        target.bookings += _cents(row["unsplit_bookings"])
        target.cycle_deals = row["cycle_deals"]
        if row["cycle_total"] is not None:
            target.cycle_days_total = row["cycle_total"].days
    for row in _split_booking_rows(scope, by):
        card(row["key"]).bookings += _cents(row["bookings"])
    for row in _unsplit_unit_rows(scope, by):
        card(row["key"]).credited_units += _cents(row["units"])
    for row in _split_unit_rows(scope, by):
        units = Decimal(str(row["percent_units"] or 0)) / 100
        card(row["key"]).credited_units += _cents(units)
    for row in _activity_rows(scope, by):
        card(row["key"]).activities[row["type"]] = row["count"]


def scorecards_by_member(scope: MetricScope) -> dict[int, Scorecard]:
    """Return every member's scorecard for the period, open pipeline included."""
    cards: dict[int, Scorecard] = {pk: Scorecard() for pk in scope.member_ids}
    _collect(scope, BY_MEMBER, cards)
    for row in _open_pipeline_rows(scope.member_ids):
        target = cards[row["owner_id"]]
        target.open_deals = row["deals"]
        target.pipeline_value = _cents(row["value"])
        target.weighted_pipeline = _cents(row["weighted"])
    return cards


def scorecards_by_month(scope: MetricScope) -> list[tuple[dt.date, Scorecard]]:
    """Return the members' combined period metrics for each month of the scope.

    Open pipeline is a snapshot of now, so it stays empty here.
    """
    cards = {month.start: Scorecard() for month in months_in(scope.start, scope.end)}
    _collect(scope, BY_MONTH, cards)
    return sorted(cards.items())


def bookings_by_month(scope: MetricScope) -> list[tuple[dt.date, Decimal]]:
    """Return the members' credited bookings for each month of the scope."""
    totals = dict.fromkeys(
        (month.start for month in months_in(scope.start, scope.end)), ZERO
    )
    for row in _closed_deal_rows(scope, BY_MONTH):
        totals[row["key"]] += _cents(row["unsplit_bookings"])
    for row in _split_booking_rows(scope, BY_MONTH):
        totals[row["key"]] += _cents(row["bookings"])
    return sorted(totals.items())


def open_pipeline_by_stage(member_ids: Collection[int]) -> list[StageTotals]:
    """Return the open deals owned by the members, totalled by stage."""
    weighted = ExpressionWrapper(
        F("amount") * F("stage__probability"), output_field=PRODUCT_FIELD
    )
    rows = (
        Deal.objects.filter(
            archived_at__isnull=True,
            stage__is_closed=False,
            owner_id__in=member_ids,
        )
        .values("stage__pipeline__name", "stage__name", "stage__order", "stage_id")
        .annotate(deals=Count("pk"), value=Sum("amount"), weighted=Sum(weighted))
        .order_by("stage__pipeline__name", "stage__order", "stage_id")
    )
    return [
        StageTotals(
            pipeline=row["stage__pipeline__name"],
            stage=row["stage__name"],
            deals=row["deals"],
            value=_cents(row["value"]),
            weighted=_cents(row["weighted"]),
        )
        for row in rows
    ]


def rep_rows(
    *,
    member_ids: Iterable[int],
    start: dt.date,
    end: dt.date,
    time_zone: ZoneInfo,
    team: Team | None = None,
) -> list[RepRow]:
    """Return one row per rep among ``member_ids``, in name order.

    Active reps always get a row, so a rep with no deals shows "no data".
    Managers, admins and deactivated members get one only when they have
    numbers of their own in the period or open pipeline.
    """
    members = Membership.objects.filter(pk__in=list(member_ids)).select_related("team")
    if team is not None:
        members = members.filter(team=team)
    members = list(members.order_by("display_name", "pk"))

    scope = MetricScope(
        member_ids=[member.pk for member in members],
        start=start,
        end=end,
        time_zone=time_zone,
    )
    cards = scorecards_by_member(scope)
    return [
        RepRow(member, cards[member.pk])
        for member in members
        if _shows_row(member, cards[member.pk])
    ]


def _shows_row(member: Membership, card: Scorecard) -> bool:
    is_active_rep = member.is_active and member.role == Membership.Role.REP
    return is_active_rep or card.has_numbers


def visible_teams(member_ids: Iterable[int]) -> list[Team]:
    """Return the teams that have at least one of the members, by name."""
    return list(
        Team.objects.filter(members__pk__in=list(member_ids))
        .distinct()
        .order_by("name")
    )


def deal_list(
    *, ordering: str, owner_ids: Collection[int] | None = None
) -> QuerySet[Deal]:
    """Return deals sorted by ``ordering`` ("amount", "-close_date", ...).

    The primary key ends the ordering, so the order is total and pages of
    unchanged data never repeat or skip a deal. Rows without the ordered value
    come last in both directions. ``owner_ids`` limits the list to deals those
    members own.
    """
    value = F(ordering.removeprefix("-"))
    if ordering.startswith("-"):
        order = value.desc(nulls_last=True)
    else:
        order = value.asc(nulls_last=True)
    deals = Deal.objects.select_related("owner", "pipeline", "stage")
    if owner_ids is not None:
        deals = deals.filter(owner_id__in=owner_ids)
    return deals.order_by(order, "pk")
