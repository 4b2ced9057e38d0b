"""Quota details around the progress figures: why a quota is prorated, team
quotas beside the reps' quotas, and the deal-count and new-pipeline quotas.

Each function runs a fixed number of queries whatever the number of members.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Sum

from activity.models import Deal
from goals.models import Quota, QuotaMetric, TimeOff
from goals.selectors import QuotaFigure, member_quotas, team_quotas
from measurement import formatting
from measurement.aggregates import ZERO, cents
from measurement.progress import percent_of
from measurement.selectors import RepRow
from spm.models import Membership, Team

ONE_DAY = dt.timedelta(days=1)


def _day_count(days: int) -> str:
    return "1 day" if days == 1 else f"{days} days"


# Proration -------------------------------------------------------------------


def proration_reasons(
    member: Membership, quota: QuotaFigure | None, start: dt.date, end: dt.date
) -> list[str]:
    """Return why the member's quota is below the quota set for the period.

    For example ``["joined 2024-02-15", "5 days of time off"]``. Empty when
    the quota is not prorated.
    """
    if quota is None or not quota.is_prorated:
        return []
    reasons = []
    if member.start_date and member.start_date > start:
        reasons.append(f"joined {member.start_date:%Y-%m-%d}")
    if member.end_date and member.end_date + ONE_DAY < end:
        reasons.append(f"left {member.end_date:%Y-%m-%d}")
    if quota.away_days:
        reasons.append(f"{_day_count(quota.away_days)} of time off")
    return reasons


def relief_lines(member: Membership, start: dt.date, end: dt.date) -> list[str]:
    """Describe each time-off entry of the member inside ``[start, end)``.

    For example "Relief: 5 days vacation, 2024-03-04 to 2024-03-08". Dates
    are clipped to the period and the days counted are calendar days, as in
    quota proration. One query.
    """
    entries = TimeOff.objects.filter(
        member=member, start_date__lt=end, end_date__gte=start
    ).order_by("start_date", "pk")
    lines = []
    for entry in entries:
        first = max(entry.start_date, start)
        last = min(entry.end_date, end - ONE_DAY)
        days = (last - first).days + 1
        line = (
            f"Relief: {_day_count(days)} {entry.get_kind_display().lower()}, "
            f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
        )
        if entry.note:
            line += f" ({entry.note})"
        lines.append(line)
    return lines


# Team quotas -----------------------------------------------------------------


@dataclass(frozen=True)
class TeamQuotaLine:
    """A team's own quota beside the sum of its listed reps' quotas.

    ``team`` is ``None`` on the total line of the "all teams" view.
    """

    label: str
    team: Team | None
    team_quota: Decimal | None
    reps_quota: Decimal | None
    reps_original: Decimal | None
    reps_with_quota: int
    reps: int

    @property
    def reps_prorated(self) -> bool:
        return self.reps_quota != self.reps_original


def _line(
    label: str, team: Team | None, quota: Decimal | None, rows: Iterable[RepRow]
) -> TeamQuotaLine:
    """Build a line whose reps' sums are ``None`` when no listed rep has a quota."""
    rows = list(rows)
    quotas = [row.progress.quota for row in rows if row.progress is not None]
    present = [figure for figure in quotas if figure is not None]
    amount = original = None
    if present:
        amount = sum((figure.amount for figure in present), ZERO)
        original = sum((figure.original for figure in present), ZERO)
    return TeamQuotaLine(label, team, quota, amount, original, len(present), len(rows))


def team_quota_lines(
    *,
    teams: Sequence[Team],
    selected: Team | None,
    rows: Sequence[RepRow],
    start: dt.date,
    end: dt.date,
) -> list[TeamQuotaLine]:
    """Return each listed team's quota beside the sum of its reps' quotas.

    With one team selected there is one line. For all teams there is a line
    per team, then a total line whose reps' sum also counts reps with no
    team. A team with no quota of its own has ``team_quota`` ``None``. One
    query.
    """
    listed_teams = [selected] if selected is not None else list(teams)
    figures = team_quotas([team.pk for team in listed_teams], start, end)
    lines = []
    for team in listed_teams:
        figure = figures.get(team.pk)
        team_rows = [row for row in rows if row.member.team_id == team.pk]
        lines.append(
            _line(team.name, team, figure.amount if figure else None, team_rows)
        )
    if selected is None and len(listed_teams) > 1:
        amounts = [figure.amount for figure in figures.values()]
        total = sum(amounts, ZERO) if amounts else None
        lines.append(_line("All teams", None, total, rows))
    return lines


# Quotas of other metrics -----------------------------------------------------


@dataclass(frozen=True)
class QuotaLine:
    """Attainment of a quota on a metric other than bookings."""

    metric: str
    label: str
    quota: QuotaFigure
    actual: Decimal
    attainment: Decimal | None

    def _text(self, value: Decimal) -> str:
        """Format money, or a deal count that proration may leave fractional."""
        if self.metric == QuotaMetric.DEAL_COUNT:
            return formatting.quantity(value)
        return formatting.money(value)

    @property
    def actual_text(self) -> str:
        return self._text(self.actual)

    @property
    def quota_text(self) -> str:
        return self._text(self.quota.amount)

    @property
    def original_text(self) -> str:
        return self._text(self.quota.original)


def new_pipeline_created(member: Membership, start: dt.date, end: dt.date) -> Decimal:
    """Sum the amount of the member's deals created in ``[start, end)``. One query.

    Every deal counts whatever its stage now, archived deals excepted.
    """
    total = Deal.objects.filter(
        owner=member,
        archived_at__isnull=True,
        created_on__gte=start,
        created_on__lt=end,
    ).aggregate(total=Sum("amount"))["total"]
    return cents(total)


def other_quota_lines(
    member: Membership, start: dt.date, end: dt.date, *, won: int
) -> list[QuotaLine]:
    """Return the member's deal-count and new-pipeline quotas with attainment.

    ``won`` is the member's won deals in the period. Only metrics with a
    quota are listed. One query when there is none. Each metric with a quota
    adds two (the quota and its time off), and the new pipeline one more.
    """
    metrics = set(
        Quota.objects.filter(
            member=member,
            metric__in=[QuotaMetric.DEAL_COUNT, QuotaMetric.NEW_PIPELINE],
            period_start__lt=end,
            period_end__gt=start,
        ).values_list("metric", flat=True)
    )
    lines = []
    for metric in (QuotaMetric.DEAL_COUNT, QuotaMetric.NEW_PIPELINE):
        if metric not in metrics:
            continue
        quota = member_quotas([member], start, end, metric)[member.pk]
        if metric == QuotaMetric.DEAL_COUNT:
            actual = Decimal(won)
        else:
            actual = new_pipeline_created(member, start, end)
        attainment = percent_of(actual, quota.amount)
        lines.append(QuotaLine(metric, metric.label, quota, actual, attainment))
    return lines
