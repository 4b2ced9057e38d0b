"""Reads for the quota grid: who carries a quota, and each cell's stored value.

A cell is one owner (a member or a team) for one metric and one quota
period. Its value is the quota whose period is exactly that period. A quota
that only overlaps it, left from when the organisation set quotas per another
period length, makes the cell read-only, because saving a second quota over
the same days would count those days twice.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q

from goals.calendar import DateRange
from goals.models import Quota, QuotaMetric
from goals.selectors import QuotaFigure, member_quotas
from goals.values import amount_display, amount_text
from spm.models import Membership, Organization, Team

# Roles that carry a quota by default. An admin appears in the grid only when
# they already have a quota in the period.
QUOTA_ROLES = (Membership.Role.REP, Membership.Role.MANAGER)
ONE_DAY = dt.timedelta(days=1)


def member_key(member: Membership) -> str:
    return f"member-{member.public_id}"


def team_key(team: Team) -> str:
    return f"team-{team.public_id}"


def quota_currency(organization: Organization, metric: str) -> str:
    """Return the currency of a quota of ``metric``: none for a count of deals."""
    return "" if metric == QuotaMetric.DEAL_COUNT else organization.currency


def overlapping(period: DateRange) -> Q:
    return Q(period_start__lt=period.end, period_end__gt=period.start)


def grid_members(period: DateRange, metric: str) -> list[Membership]:
    """Return the active members who carry a quota in ``period``, in one query.

    Reps and managers employed on at least one day of the period carry one,
    and so does anyone, admins included, who already has a quota in it.
    """
    has_quota = Exists(
        Quota.objects.filter(member=OuterRef("pk"), metric=metric).filter(
            overlapping(period)
        )
    )
    employed = (Q(start_date__isnull=True) | Q(start_date__lt=period.end)) & (
        Q(end_date__isnull=True) | Q(end_date__gte=period.start)
    )
    return list(
        Membership.objects.filter(is_active=True)
        .filter((Q(role__in=QUOTA_ROLES) & employed) | has_quota)
        .select_related("team", "user")
        .order_by("display_name", "pk")
    )


def member_email(member: Membership) -> str:
    """Return the member's address: their membership email, else their login's."""
    if member.email:
        return member.email
    return member.user.email if member.user_id else ""


@dataclass
class GridRow:
    """One input of the grid: an owner's quota for the period, set or not."""

    key: str
    owner: Membership | Team
    metric: str
    quota: Quota | None = None
    # A stored quota over another period length that overlaps this one.
    conflict: Quota | None = None
    figure: QuotaFigure | None = None
    # What the input shows: the stored value, or what was posted.
    text: str = ""
    error: str = ""

    @property
    def amount(self) -> Decimal | None:
        return self.quota.amount if self.quota else None

    @property
    def name(self) -> str:
        return str(self.owner)

    @property
    def stored_text(self) -> str:
        """Return the stored amount as the input first shows it."""
        return amount_text(self.amount, self.metric)

    @property
    def currency(self) -> str:
        return self.quota.currency if self.quota else ""

    @property
    def conflict_note(self) -> str:
        if self.conflict is None:
            return ""
        last = self.conflict.period_end - ONE_DAY
        amount = amount_display(self.conflict.amount, self.metric)
        return (
            f"set for {self.conflict.period_start:%Y-%m-%d} to {last:%Y-%m-%d}: "
            f"{amount}"
        )

    @property
    def prorated_note(self) -> str:
        """Return "prorated: 50,549.45 of 100,000.00, joined 2024-02-15", or ""."""
        figure = self.figure
        if figure is None or not figure.is_prorated or self.quota is None:
            return ""
        member = self.owner
        parts = [
            f"prorated: {amount_display(figure.amount, self.metric)} of "
            f"{amount_display(figure.original, self.metric)}"
        ]
        period_start = self.quota.period_start
        period_end = self.quota.period_end
        if member.start_date and period_start < member.start_date < period_end:
            parts.append(f"joined {member.start_date:%Y-%m-%d}")
        if member.end_date and period_start <= member.end_date < period_end - ONE_DAY:
            parts.append(f"last day {member.end_date:%Y-%m-%d}")
        if figure.away_days:
            parts.append(f"{figure.away_days} day{'s' * (figure.away_days != 1)} off")
        return ", ".join(parts)


@dataclass
class TeamRow(GridRow):
    """A team's own quota, shown beside the sum of its reps' quotas."""

    reps_sum: Decimal = Decimal(0)
    reps_counted: int = 0

    @property
    def reps_sum_display(self) -> str:
        return amount_display(self.reps_sum, self.metric)


@dataclass
class QuotaGrid:
    period: DateRange
    metric: str
    currency: str
    members: list[GridRow]
    teams: list[TeamRow]

    def rows(self) -> list[GridRow]:
        return [*self.members, *self.teams]


def _stored_quotas(period: DateRange, metric: str) -> dict[tuple[str, int], list]:
    """Return the quotas overlapping ``period``, by ("member" or "team", id)."""
    found: dict[tuple[str, int], list[Quota]] = defaultdict(list)
    for quota in Quota.objects.filter(metric=metric).filter(overlapping(period)):
        if quota.member_id is not None:
            found[("member", quota.member_id)].append(quota)
        else:
            found[("team", quota.team_id)].append(quota)
    return found


def _place(row: GridRow, quotas: list[Quota], period: DateRange) -> None:
    for quota in quotas:
        if quota.period_start == period.start and quota.period_end == period.end:
            row.quota = quota
        elif row.conflict is None:
            row.conflict = quota
    row.text = amount_text(row.amount, row.metric)


def quota_grid(organization: Organization, period: DateRange, metric: str) -> QuotaGrid:
    """Return the grid of ``period`` and ``metric`` in a fixed number of queries.

    Members (one query), stored quotas (one), prorated figures (two) and
    teams (one): five, whatever the number of members.
    """
    members = grid_members(period, metric)
    stored = _stored_quotas(period, metric)
    figures = member_quotas(members, period.start, period.end, metric)

    member_rows = []
    for member in members:
        row = GridRow(member_key(member), member, metric)
        _place(row, stored.get(("member", member.pk), []), period)
        row.figure = figures.get(member.pk)
        member_rows.append(row)

    team_rows = []
    for team in Team.objects.order_by("name", "pk"):
        row = TeamRow(team_key(team), team, metric)
        _place(row, stored.get(("team", team.pk), []), period)
        for member_row in member_rows:
            member = member_row.owner
            is_rep = member.role == Membership.Role.REP
            if is_rep and member.team_id == team.pk and member_row.quota:
                row.reps_sum += member_row.quota.amount
                row.reps_counted += 1
        team_rows.append(row)

    currency = quota_currency(organization, metric)
    return QuotaGrid(period, metric, currency, member_rows, team_rows)
