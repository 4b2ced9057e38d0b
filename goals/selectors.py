"""What each rep is measured against in a date range.

Every function here reads for many members at once with a fixed number of
queries, so a page or a rule evaluation costs the same for 5 reps or 200.
Ranges are half-open, ``[start, end)``; membership start and end dates and
time off are inclusive calendar dates, as people write them.

Proration counts calendar days: a quota for a 91-day quarter is scaled by the
days of the quarter on which the rep was on the team and not away. Activity
benchmarks count business days (Monday to Friday), because nobody is expected
to make calls on a Sunday.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.core.cache import cache
from django.db.models import Count, Q

from activity.models import Deal
from goals.calendar import add_months, fiscal_quarter_range
from goals.models import ActivityBenchmark, BenchmarkUnit, Quota, QuotaMetric, TimeOff
from spm.models import Membership, Organization
from spm.money import round_money

ONE_DAY = dt.timedelta(days=1)
HUNDREDTH = Decimal("0.01")
BUSINESS_DAYS_PER_WEEK = 5
# The closed-deal counts behind coverage targets cover past quarters only, so
# they are cached. A write of deals calls ``closed_deals_changed``; this
# lifetime bounds how stale the counts can be after a write that does not.
CLOSED_DEAL_COUNTS_SECONDS = 15 * 60


def _days(start: dt.date, end: dt.date) -> Iterable[dt.date]:
    day = start
    while day < end:
        yield day
        day += ONE_DAY


def is_business_day(day: dt.date) -> bool:
    return day.weekday() < BUSINESS_DAYS_PER_WEEK


def business_days(start: dt.date, end: dt.date) -> int:
    """Count Monday-to-Friday days in ``[start, end)``."""
    return sum(1 for day in _days(start, end) if is_business_day(day))


# Time off --------------------------------------------------------------------


def days_away(
    member_ids: Collection[int], start: dt.date, end: dt.date
) -> dict[int, set[dt.date]]:
    """Return, per member, the days in ``[start, end)`` they are on time off.

    Overlapping entries count each day once. One query.
    """
    away: dict[int, set[dt.date]] = defaultdict(set)
    rows = TimeOff.objects.filter(
        member_id__in=member_ids, start_date__lt=end, end_date__gte=start
    ).values_list("member_id", "start_date", "end_date")
    for member_id, first, last in rows:
        away[member_id].update(_days(max(first, start), min(last + ONE_DAY, end)))
    return away


def members_away_on(member_ids: Collection[int] | None, day: dt.date) -> set[int]:
    """Return the members who are on time off on ``day``; lead routing skips them.

    With ``member_ids`` None, every member of the organisation is considered.
    """
    away = TimeOff.objects.filter(start_date__lte=day, end_date__gte=day)
    if member_ids is not None:
        away = away.filter(member_id__in=member_ids)
    return set(away.values_list("member_id", flat=True))


def _active_days(
    member: Membership, start: dt.date, end: dt.date
) -> tuple[dt.date, dt.date]:
    """Clip ``[start, end)`` to the member's days on the team."""
    first = max(start, member.start_date) if member.start_date else start
    last = min(end, member.end_date + ONE_DAY) if member.end_date else end
    return first, max(first, last)


# Quotas ----------------------------------------------------------------------


@dataclass(frozen=True)
class QuotaFigure:
    """A quota over a date range, before and after proration.

    ``original`` is what the admin set for the range; ``amount`` is what the
    member is measured against once the days before they started, after they
    left and on time off are taken out. Both are rounded once, to the cent.
    """

    amount: Decimal
    original: Decimal
    currency: str
    period_days: int
    active_days: int
    away_days: int

    @property
    def is_prorated(self) -> bool:
        return self.amount != self.original


def _accumulate_quota(
    rows: Iterable[Quota],
    start: dt.date,
    end: dt.date,
    counted: set[dt.date] | None,
) -> tuple[Decimal, Decimal, str]:
    """Sum the quota rows' shares of ``[start, end)``, unrounded.

    A quota row counts for the part of its own period inside the range. With
    ``counted`` (the member's active days not away), the share is scaled by
    the counted days of that part over the days of the row's period.
    """
    original = Decimal(0)
    prorated = Decimal(0)
    currency = ""
    for quota in rows:
        first = max(start, quota.period_start)
        last = min(end, quota.period_end)
        if first >= last:
            continue
        row_days = (quota.period_end - quota.period_start).days
        inside = (last - first).days
        original += quota.amount * inside / row_days
        if counted is None:
            prorated += quota.amount * inside / row_days
        else:
            kept = sum(1 for day in _days(first, last) if day in counted)
            prorated += quota.amount * kept / row_days
        currency = currency or quota.currency
    return original, prorated, currency


def member_quotas(
    members: Iterable[Membership],
    start: dt.date,
    end: dt.date,
    metric: str = QuotaMetric.BOOKINGS,
) -> dict[int, QuotaFigure]:
    """Return each member's quota for ``[start, end)``, prorated. Two queries.

    Members with no quota row overlapping the range are left out, so a page
    can show "no quota" rather than show a quota of zero.
    """
    members = {member.pk: member for member in members}
    rows: dict[int, list[Quota]] = defaultdict(list)
    for quota in Quota.objects.filter(
        member_id__in=members,
        metric=metric,
        period_start__lt=end,
        period_end__gt=start,
    ):
        rows[quota.member_id].append(quota)
    away = days_away(list(rows), start, end)
    figures = {}
    for member_id, quotas in rows.items():
        first, last = _active_days(members[member_id], start, end)
        away_days = {day for day in away.get(member_id, ()) if first <= day < last}
        counted = set(_days(first, last)) - away_days
        original, prorated, currency = _accumulate_quota(quotas, start, end, counted)
        figures[member_id] = QuotaFigure(
            amount=round_money(prorated),
            original=round_money(original),
            currency=currency,
            period_days=(end - start).days,
            active_days=(last - first).days,
            away_days=len(away_days),
        )
    return figures


def team_quotas(
    team_ids: Collection[int],
    start: dt.date,
    end: dt.date,
    metric: str = QuotaMetric.BOOKINGS,
) -> dict[int, QuotaFigure]:
    """Return each team's own quota for ``[start, end)``. One query."""
    rows: dict[int, list[Quota]] = defaultdict(list)
    for quota in Quota.objects.filter(
        team_id__in=team_ids,
        metric=metric,
        period_start__lt=end,
        period_end__gt=start,
    ):
        rows[quota.team_id].append(quota)
    figures = {}
    for team_id, quotas in rows.items():
        original, _prorated, currency = _accumulate_quota(quotas, start, end, None)
        amount = round_money(original)
        figures[team_id] = QuotaFigure(
            amount=amount,
            original=amount,
            currency=currency,
            period_days=(end - start).days,
            active_days=(end - start).days,
            away_days=0,
        )
    return figures


# Activity benchmarks ---------------------------------------------------------


def ramp_percent(ramp: list, start_date: dt.date | None, day: dt.date) -> Decimal:
    """Return the percentage of the benchmark expected of a member on ``day``.

    Month one runs from the start date to the same day of the next month.
    """
    if not ramp or start_date is None or day < start_date:
        return Decimal(100)
    months = (day.year - start_date.year) * 12 + day.month - start_date.month
    if day.day < start_date.day:
        months -= 1
    return Decimal(str(ramp[months])) if months < len(ramp) else Decimal(100)


@dataclass(frozen=True)
class ActivityExpectation:
    """How many activities of one type a member should have logged in a range."""

    activity_type: str
    unit: str
    target: Decimal
    expected: Decimal
    business_days: int
    counted_days: int
    ramped: bool = False


def _benchmark_for(
    member: Membership, benchmarks: list[ActivityBenchmark]
) -> ActivityBenchmark | None:
    """Pick the most specific benchmark: the member's team, then role, then all."""
    best = None
    best_rank = -1
    for benchmark in benchmarks:
        if benchmark.team_id is not None and benchmark.team_id != member.team_id:
            continue
        if benchmark.role and benchmark.role != member.role:
            continue
        rank = 0
        if benchmark.team_id:
            rank += 2
        if benchmark.role:
            rank += 1
        if rank > best_rank:
            best, best_rank = benchmark, rank
    return best


def member_benchmarks(
    members: Iterable[Membership], start: dt.date, end: dt.date
) -> dict[int, list[ActivityExpectation]]:
    """Return each member's expected activity counts for ``[start, end)``.

    A per-day target is expected on each business day the member was on the
    team and not away, times the ramp percentage for that day; a per-week
    target counts a fifth of itself per such day. Two queries.
    """
    members = list(members)
    by_type: dict[str, list[ActivityBenchmark]] = defaultdict(list)
    for benchmark in ActivityBenchmark.objects.all():
        by_type[benchmark.activity_type].append(benchmark)
    if not by_type:
        return {}
    away = days_away([member.pk for member in members], start, end)
    period_business_days = business_days(start, end)
    result: dict[int, list[ActivityExpectation]] = {}
    for member in members:
        first, last = _active_days(member, start, end)
        days = [
            day
            for day in _days(first, last)
            if is_business_day(day) and day not in away.get(member.pk, ())
        ]
        expectations = []
        for activity_type in sorted(by_type):
            benchmark = _benchmark_for(member, by_type[activity_type])
            if benchmark is None:
                continue
            per_day = benchmark.target
            if benchmark.unit == BenchmarkUnit.WEEK:
                per_day = benchmark.target / BUSINESS_DAYS_PER_WEEK
            # Days counted by ramp percentage: {100: 63} without a ramp.
            if benchmark.ramp and member.start_date is not None:
                percents = Counter(
                    ramp_percent(benchmark.ramp, member.start_date, day) for day in days
                )
            else:
                percents = Counter({Decimal(100): len(days)})
            expected = sum(
                (
                    per_day * percent / 100 * count
                    for percent, count in percents.items()
                ),
                Decimal(0),
            )
            expectations.append(
                ActivityExpectation(
                    activity_type=activity_type,
                    unit=benchmark.unit,
                    target=benchmark.target,
                    expected=expected.quantize(HUNDREDTH, ROUND_HALF_UP),
                    business_days=period_business_days,
                    counted_days=len(days),
                    ramped=any(p < 100 for p in percents),
                )
            )
        if expectations:
            result[member.pk] = expectations
    return result


# Pipeline coverage target ----------------------------------------------------


@dataclass(frozen=True)
class CoverageTarget:
    """The coverage a member needs, and where the figure comes from.

    ``source`` is ``fixed`` (the organisation pinned a ratio), ``rep`` (the
    member's own win rate), ``team`` (their team's, when they closed too few
    deals), ``organization`` (everyone's, when the team also closed too few
    or they have no team) or ``none`` (nothing closed in the window).
    """

    ratio: Decimal | None
    source: str
    win_rate: Decimal | None = None
    won: int = 0
    closed: int = 0
    window_start: dt.date | None = None
    window_end: dt.date | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def explanation(self) -> str:
        if self.source == "fixed":
            return f"{self.ratio}x, fixed by the organisation"
        if self.source == "none":
            if self.closed:
                return f"no target: none of {self.closed} closed deals was won"
            return "no target: no deals closed in the last four quarters"
        who = {"rep": "own", "team": "team's", "organization": "organisation's"}
        percent = (self.win_rate * 100).quantize(Decimal("0.1"), ROUND_HALF_UP)
        return (
            f"{self.ratio}x = 1 / {percent}% {who[self.source]} win rate "
            f"({self.won} won of {self.closed} closed, "
            f"{self.window_start:%Y-%m-%d} to {self.window_end - ONE_DAY:%Y-%m-%d})"
        )


def trailing_window(
    organization: Organization, day: dt.date
) -> tuple[dt.date, dt.date]:
    """Return the four fiscal quarters before the quarter containing ``day``."""
    quarter = fiscal_quarter_range(day, organization.fiscal_year_start_month)
    return add_months(quarter.start, -12), quarter.start


def _win_rate(won: int, closed: int) -> Decimal:
    return Decimal(won) / closed


def _ratio(won: int, closed: int) -> Decimal:
    return (Decimal(closed) / won).quantize(HUNDREDTH, ROUND_HALF_UP)


def _counts_version_key(organization_id: int) -> str:
    return f"goals:closed-deal-counts-version:{organization_id}"


def closed_deals_changed(organization_id: int) -> None:
    """Expire the cached closed-deal counts of an organisation.

    Call it after a transaction that writes deals commits.
    """
    cache.delete(_counts_version_key(organization_id))


def closed_deal_counts(
    organization_id: int, window_start: dt.date, window_end: dt.date
) -> list[tuple[int, int, int]]:
    """Return ``(owner id, won, closed)`` for deals closed in the window.

    The window is ``[window_start, window_end)``.

    The result is cached under a version that ``closed_deals_changed`` replaces.
    """
    version_key = _counts_version_key(organization_id)
    version = cache.get(version_key)
    if version is None:
        version = uuid.uuid4().hex
        cache.set(version_key, version, CLOSED_DEAL_COUNTS_SECONDS)
    key = (
        f"goals:closed-deal-counts:{organization_id}:"
        f"{window_start}:{window_end}:{version}"
    )
    counts = cache.get(key)
    if counts is not None:
        return counts
    rows = (
        Deal.objects.filter(
            archived_at__isnull=True,
            stage__is_closed=True,
            close_date__gte=window_start,
            close_date__lt=window_end,
            owner__isnull=False,
        )
        .values("owner_id")
        .annotate(
            won=Count("pk", filter=Q(stage__is_won=True)),
            closed=Count("pk"),
        )
        .order_by()
    )
    counts = [(row["owner_id"], row["won"], row["closed"]) for row in rows]
    cache.set(key, counts, CLOSED_DEAL_COUNTS_SECONDS)
    return counts


def coverage_targets(
    organization: Organization,
    members: Iterable[Membership],
    day: dt.date,
) -> dict[int, CoverageTarget]:
    """Return each member's pipeline coverage target for the period holding ``day``.

    With no fixed ratio, the target is 1 / win rate over the four fiscal
    quarters before the current one: the member's own when they closed at
    least ``coverage_min_closed_deals`` deals, else their team's, else the
    organisation's. A rep counts towards the team they are on now. A win
    rate of zero gives no target rather than an infinite one. One query,
    plus one for the closed-deal counts when they are not cached.
    """
    members = list(members)
    if organization.coverage_target_fixed is not None:
        fixed = CoverageTarget(organization.coverage_target_fixed, "fixed")
        return {member.pk: fixed for member in members}
    window_start, window_end = trailing_window(organization, day)
    counts = closed_deal_counts(organization.pk, window_start, window_end)
    team_of = dict(Membership.objects.values_list("pk", "team_id"))
    per_member: dict[int, tuple[int, int]] = {}
    per_team: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    everyone = [0, 0]
    for owner_id, won, closed in counts:
        per_member[owner_id] = (won, closed)
        team_id = team_of.get(owner_id)
        if team_id is not None:
            per_team[team_id][0] += won
            per_team[team_id][1] += closed
        everyone[0] += won
        everyone[1] += closed
    minimum = organization.coverage_min_closed_deals
    targets = {}
    for member in members:
        candidates = [("rep", per_member.get(member.pk, (0, 0)))]
        if member.team_id is not None:
            candidates.append(("team", tuple(per_team.get(member.team_id, (0, 0)))))
        candidates.append(("organization", tuple(everyone)))
        notes = []
        while candidates[0][0] != "organization" and candidates[0][1][1] < minimum:
            source, (_won, closed) = candidates.pop(0)
            notes.append(f"{source} closed {closed} deals, fewer than {minimum}")
        source, (won, closed) = candidates[0]
        if not won:
            targets[member.pk] = CoverageTarget(
                None,
                "none",
                won=won,
                closed=closed,
                window_start=window_start,
                window_end=window_end,
                notes=notes,
            )
            continue
        targets[member.pk] = CoverageTarget(
            ratio=_ratio(won, closed),
            source=source,
            win_rate=_win_rate(won, closed),
            won=won,
            closed=closed,
            window_start=window_start,
            window_end=window_end,
            notes=notes,
        )
    return targets
