"""Per-rep metrics, each defined once and aggregated in SQL.

Every function here runs a fixed number of queries whatever the number of
members: the grouped queries of measurement.aggregates, whose rows are then
added up in Python. Pages, the CSV export and the API all read these, so they
show the same numbers. Definitions are documented in docs/metrics.md.

Dates are calendar dates in the organisation's time zone, and a period is the
half-open range ``[start, end)``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

from django.db.models import F, QuerySet

from activity.models import Deal
from goals.calendar import months_in
from measurement.aggregates import (
    ACTIVITY_TYPES,
    ZERO,
    DealSums,
    OpenGroup,
    activity_counts,
    activity_rows_by_month,
    cents,
    deal_sums,
    open_groups,
)
from measurement.stage_conversion import (
    MemberConversion,
    StageConversion,
    stage_conversion,
)
from spm.models import Membership, Team

if TYPE_CHECKING:
    from measurement.progress import RepProgress

GroupBy = Literal["member", "month"]
BY_MEMBER: GroupBy = "member"
BY_MONTH: GroupBy = "month"
TENTH = Decimal("0.1")


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
    # Filled by measurement.progress.attach_progress on pages that show goals.
    progress: RepProgress | None = None
    # Filled by attach_stage_conversion where stage conversion is shown.
    stage_conversion: MemberConversion | None = None

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


@dataclass
class TeamMetrics:
    """The team dashboard's rows and the totals of its charts."""

    rows: list[RepRow]
    bookings_by_month: list[tuple[dt.date, Decimal]]
    pipeline_by_stage: list[StageTotals]


def _fold_deal_sums(
    sums: dict[tuple[int, dt.date], DealSums],
    by: GroupBy,
    member_ids: Collection[int] | None = None,
) -> dict:
    """Add up the (member, month) sums by member or by month.

    ``member_ids`` limits the total to those members when given.
    """
    totals: defaultdict = defaultdict(DealSums)
    for (member_id, month), group in sums.items():
        if member_ids is None or member_id in member_ids:
            totals[member_id if by == BY_MEMBER else month].add(group)
    return totals


def _fill_deal_metrics(card: Scorecard, sums: DealSums) -> None:
    card.won, card.lost = sums.won, sums.lost
    card.bookings = sums.bookings
    card.credited_units = sums.credited_units
    card.cycle_days_total = sums.cycle_days_total
    card.cycle_deals = sums.cycle_deals


def _fill_open_pipeline(cards: dict[int, Scorecard], groups: list[OpenGroup]) -> None:
    value: defaultdict[int, Decimal] = defaultdict(Decimal)
    weighted: defaultdict[int, Decimal] = defaultdict(Decimal)
    for group in groups:
        cards[group.owner_id].open_deals += group.deals
        value[group.owner_id] += group.value
        weighted[group.owner_id] += group.weighted
    for owner_id in value:
        cards[owner_id].pipeline_value = cents(value[owner_id])
        cards[owner_id].weighted_pipeline = cents(weighted[owner_id])


def _member_cards(
    scope: MetricScope,
    sums: dict[tuple[int, dt.date], DealSums],
    groups: list[OpenGroup],
) -> dict[int, Scorecard]:
    cards: dict[int, Scorecard] = {pk: Scorecard() for pk in scope.member_ids}
    for member_id, totals in _fold_deal_sums(sums, BY_MEMBER).items():
        _fill_deal_metrics(cards[member_id], totals)
    for row in activity_counts(scope):
        activities = cards[row["pk"]].activities
        for kind in ACTIVITY_TYPES:
            activities[kind] = row[f"{kind}_count"] or 0
    _fill_open_pipeline(cards, groups)
    return cards


def _monthly_bookings(
    scope: MetricScope,
    sums: dict[tuple[int, dt.date], DealSums],
    member_ids: Collection[int] | None = None,
) -> list[tuple[dt.date, Decimal]]:
    totals = dict.fromkeys(
        (month.start for month in months_in(scope.start, scope.end)), ZERO
    )
    for month, group in _fold_deal_sums(sums, BY_MONTH, member_ids).items():
        totals[month] = group.bookings
    return sorted(totals.items())


def _stage_totals(groups: Iterable[OpenGroup]) -> list[StageTotals]:
    """Add up open groups by stage, keeping the order the stages come in."""
    stages: dict[int, StageTotals] = {}
    for group in groups:
        totals = stages.setdefault(
            group.stage_id,
            StageTotals(group.pipeline, group.stage, 0, Decimal(0), Decimal(0)),
        )
        totals.deals += group.deals
        totals.value += group.value
        totals.weighted += group.weighted
    for totals in stages.values():
        totals.value = cents(totals.value)
        totals.weighted = cents(totals.weighted)
    return list(stages.values())


def scorecards_by_member(scope: MetricScope) -> dict[int, Scorecard]:
    """Return every member's scorecard for the period, open pipeline included."""
    return _member_cards(scope, deal_sums(scope), open_groups(scope.member_ids))


def scorecards_by_month(scope: MetricScope) -> list[tuple[dt.date, Scorecard]]:
    """Return the members' combined period metrics for each month of the scope.

    Open pipeline is a snapshot of now, so it stays empty here.
    """
    cards = {month.start: Scorecard() for month in months_in(scope.start, scope.end)}
    for month, totals in _fold_deal_sums(deal_sums(scope), BY_MONTH).items():
        _fill_deal_metrics(cards.setdefault(month, Scorecard()), totals)
    for row in activity_rows_by_month(scope):
        card = cards.setdefault(row["month"], Scorecard())
        card.activities[row["type"]] = row["count"]
    return sorted(cards.items())


def bookings_by_member(scope: MetricScope) -> dict[int, Decimal]:
    """Return each member's credited bookings in the scope. Three queries.

    Members with no won deal in the scope are left out.
    """
    totals = _fold_deal_sums(deal_sums(scope), BY_MEMBER)
    return {member_id: sums.bookings for member_id, sums in totals.items()}


def bookings_by_month(scope: MetricScope) -> list[tuple[dt.date, Decimal]]:
    """Return the members' credited bookings for each month of the scope."""
    return _monthly_bookings(scope, deal_sums(scope))


def open_pipeline_by_stage(member_ids: Collection[int]) -> list[StageTotals]:
    """Return the open deals owned by the members, totalled by stage."""
    return _stage_totals(open_groups(member_ids))


def team_metrics(
    *,
    member_ids: Iterable[int],
    start: dt.date,
    end: dt.date,
    time_zone: ZoneInfo,
    team: Team | None = None,
) -> TeamMetrics:
    """Return the rep rows and the chart totals of the team dashboard.

    Rows are one per rep among ``member_ids``, in name order. Active reps
    always get a row, so a rep with no deals shows "no data". Managers,
    admins and deactivated members get one only when they have numbers of
    their own in the period or open pipeline. The charts add up the members
    that have a row.
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
    sums = deal_sums(scope)
    groups = open_groups(scope.member_ids)
    cards = _member_cards(scope, sums, groups)
    rows = [
        RepRow(member, cards[member.pk])
        for member in members
        if _shows_row(member, cards[member.pk])
    ]

    row_member_ids = {row.member.pk for row in rows}
    row_groups = [group for group in groups if group.owner_id in row_member_ids]
    return TeamMetrics(
        rows=rows,
        bookings_by_month=_monthly_bookings(scope, sums, row_member_ids),
        pipeline_by_stage=_stage_totals(row_groups),
    )


def rep_rows(
    *,
    member_ids: Iterable[int],
    start: dt.date,
    end: dt.date,
    time_zone: ZoneInfo,
    team: Team | None = None,
) -> list[RepRow]:
    """Return one row per rep among ``member_ids``, in name order.

    Which members get a row is explained in ``team_metrics``.
    """
    metrics = team_metrics(
        member_ids=member_ids, start=start, end=end, time_zone=time_zone, team=team
    )
    return metrics.rows


def attach_stage_conversion(
    rows: list[RepRow], *, start: dt.date, end: dt.date, time_zone: ZoneInfo
) -> StageConversion:
    """Set each row's stage conversion for ``[start, end)`` and return them all.

    The pipeline measured is chosen from the deals of the rows' members, as
    ``measurement.stage_conversion`` explains. Two queries.
    """
    scope = MetricScope([row.member.pk for row in rows], start, end, time_zone)
    conversion = stage_conversion(scope)
    for row in rows:
        row.stage_conversion = conversion.of_member(row.member.pk)
    return conversion


@dataclass
class FunnelRow:
    """A member listed in the conversion funnel."""

    member: Membership
    stage_conversion: MemberConversion | None = None


def funnel_rows(
    *,
    member_ids: Iterable[int],
    start: dt.date,
    end: dt.date,
    time_zone: ZoneInfo,
    team: Team | None = None,
) -> tuple[list[FunnelRow], StageConversion]:
    """Return the funnel's members, in name order, and their stage conversion.

    The members are those of ``member_ids`` (in ``team``, if given) that are
    active reps, and any other member whose deals entered a measured stage.
    One query for the members, then those of ``stage_conversion``.
    """
    members = Membership.objects.filter(pk__in=list(member_ids))
    if team is not None:
        members = members.filter(team=team)
    members = list(members.order_by("display_name", "pk"))
    scope = MetricScope([member.pk for member in members], start, end, time_zone)
    conversion = stage_conversion(scope)
    rows = [
        FunnelRow(member, conversion.of_member(member.pk))
        for member in members
        if (member.is_active and member.role == Membership.Role.REP)
        or member.pk in conversion.counts
    ]
    return rows, conversion


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
