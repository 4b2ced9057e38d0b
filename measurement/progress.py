"""Progress against goals: attainment, pace, coverage, forecast and activity.

Targets come from goals.selectors and actuals from measurement.aggregates.
Every function here runs a fixed number of queries whatever the number of
members. Dates are calendar dates in the organisation's time zone, periods
are half-open ``[start, end)`` and ``today`` is the organisation's local
date. Definitions are documented in docs/metrics.md.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import ExpressionWrapper, F, Sum

from activity.models import Deal
from goals.selectors import (
    CoverageTarget,
    QuotaFigure,
    coverage_targets,
    member_benchmarks,
    member_quotas,
)
from measurement.aggregates import (
    ACTIVITY_TYPES,
    PRODUCT_FIELD,
    ZERO,
    activity_counts,
    cents,
)
from measurement.coverage import Coverage, pipeline_coverage
from measurement.selectors import MetricScope, RepRow, bookings_by_member
from spm.models import Membership, Organization

ONE_DAY = dt.timedelta(days=1)
TENTH = Decimal("0.1")
# Activity status thresholds, in percent of the expected count.
ON_PERCENT = Decimal(100)
NEAR_PERCENT = Decimal(80)


class ActivityLevel:
    ON = "on"
    NEAR = "near"
    BELOW = "below"
    NONE = "none"


class CoverageStatus:
    MET = "met"
    ABOVE = "above"
    BELOW = "below"
    NO_TARGET = "no target"
    NO_QUOTA = "no quota"


@dataclass(frozen=True)
class ActivityStatus:
    """A member's activities of one type against their benchmark.

    ``ratio`` is actual / expected in percent to 0.1, ``None`` when nothing
    was expected. ``status`` is read from that rounded ratio: ``on`` at 100%
    or more, ``near`` from 80% (included), ``below`` under 80%, and ``none``
    with no ratio. ``ramped`` is true when a new hire's ramp lowered the
    expected count on at least one day.
    """

    activity_type: str
    actual: int
    expected: Decimal
    ratio: Decimal | None
    status: str
    ramped: bool = False


@dataclass(frozen=True)
class RepProgress:
    """One member's progress towards their bookings quota in a period.

    Percentages are rounded half up to 0.1 and money to the cent.
    ``attainment`` and ``attainment_to_pace`` are ``None`` with no quota (or
    a quota prorated to zero), and ``attainment_to_pace`` also before the
    period starts.
    """

    member_id: int
    quota: QuotaFigure | None
    bookings: Decimal
    attainment: Decimal | None
    pace: Decimal | None
    attainment_to_pace: Decimal | None
    in_period_pipeline: Decimal
    coverage: Coverage
    coverage_target: CoverageTarget
    coverage_status: str
    forecast: Decimal
    activity: list[ActivityStatus]


def percent_of(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """Return part / whole in percent, rounded half up to 0.1, or None for whole 0."""
    if not whole:
        return None
    return (Decimal(part) * 100 / Decimal(whole)).quantize(TENTH, ROUND_HALF_UP)


def elapsed_days(start: dt.date, end: dt.date, today: dt.date) -> int:
    """Count the days of ``[start, end)`` from ``start`` to ``today`` inclusive."""
    return min(max((today - start).days + 1, 0), (end - start).days)


def period_pace(start: dt.date, end: dt.date, today: dt.date) -> Decimal:
    """Return the percent of the period's calendar days elapsed by ``today``.

    Day 46 of a 91-day quarter is 46 / 91 = 50.5%. A period that has ended
    is 100% and one that has not started is 0%.
    """
    pace = percent_of(elapsed_days(start, end, today), (end - start).days)
    return pace if pace is not None else Decimal(0)


def activity_level(ratio: Decimal | None) -> str:
    if ratio is None:
        return ActivityLevel.NONE
    if ratio >= ON_PERCENT:
        return ActivityLevel.ON
    if ratio >= NEAR_PERCENT:
        return ActivityLevel.NEAR
    return ActivityLevel.BELOW


def coverage_status(
    quota: QuotaFigure | None, coverage: Coverage, target: CoverageTarget
) -> str:
    """Compare the coverage ratio with the target ratio.

    ``met`` means nothing of the quota remains, so no coverage is needed.
    ``above`` includes a ratio equal to the target.
    """
    if quota is None:
        return CoverageStatus.NO_QUOTA
    if coverage.met:
        return CoverageStatus.MET
    if target.ratio is None:
        return CoverageStatus.NO_TARGET
    if coverage.ratio is not None and coverage.ratio >= target.ratio:
        return CoverageStatus.ABOVE
    return CoverageStatus.BELOW


# Queries ---------------------------------------------------------------------


@dataclass(frozen=True)
class OpenInPeriod:
    """Unrounded sums of a member's qualified open deals closing in a range."""

    value: Decimal = ZERO
    weighted: Decimal = ZERO


def open_in_period(
    member_ids: Collection[int], start: dt.date, end: dt.date
) -> dict[int, OpenInPeriod]:
    """Sum the qualified open deals closing in ``[start, end)``, by owner.

    Qualified means an open stage with a probability above zero. One query,
    none for an empty range.
    """
    if start >= end or not member_ids:
        return {}
    weighted = ExpressionWrapper(
        F("amount") * F("stage__probability"), output_field=PRODUCT_FIELD
    )
    rows = (
        Deal.objects.filter(
            archived_at__isnull=True,
            stage__is_closed=False,
            stage__probability__gt=0,
            owner_id__in=member_ids,
            close_date__gte=start,
            close_date__lt=end,
        )
        .values("owner_id")
        .annotate(value=Sum("amount"), weighted=Sum(weighted))
        .order_by()
    )
    return {
        row["owner_id"]: OpenInPeriod(
            value=Decimal(row["value"] or 0), weighted=Decimal(row["weighted"] or 0)
        )
        for row in rows
    }


# Activity against benchmark --------------------------------------------------


def _statuses(
    expectations: Mapping[int, list], counts: Mapping[int, Mapping[str, int]]
) -> dict[int, list[ActivityStatus]]:
    result = {}
    for member_id, expected_list in expectations.items():
        actual_by_type = counts.get(member_id, {})
        statuses = []
        for expectation in expected_list:
            actual = actual_by_type.get(expectation.activity_type, 0)
            ratio = percent_of(actual, expectation.expected)
            statuses.append(
                ActivityStatus(
                    activity_type=expectation.activity_type,
                    actual=actual,
                    expected=expectation.expected,
                    ratio=ratio,
                    status=activity_level(ratio),
                    ramped=expectation.ramped,
                )
            )
        result[member_id] = statuses
    return result


def _activity_counts(scope: MetricScope) -> dict[int, dict[str, int]]:
    return {
        row["pk"]: {kind: row[f"{kind}_count"] or 0 for kind in ACTIVITY_TYPES}
        for row in activity_counts(scope)
    }


def activity_status(
    *,
    organization: Organization,
    members: Iterable[Membership],
    start: dt.date,
    end: dt.date,
    counts: Mapping[int, Mapping[str, int]] | None = None,
) -> dict[int, list[ActivityStatus]]:
    """Compare each member's activities per type in ``[start, end)`` with benchmarks.

    Every member gets an entry, with an empty list when no benchmark applies
    to them. Activities count from local midnight of ``start`` to local
    midnight of ``end``. ``counts`` (activities per member and type over the
    same range) saves the counting query when the caller has them. At most
    three queries.
    """
    members = list(members)
    expectations = member_benchmarks(members, start, end)
    result: dict[int, list[ActivityStatus]] = {member.pk: [] for member in members}
    if not expectations:
        return result
    if counts is None:
        scope = MetricScope(list(expectations), start, end, organization.zoneinfo)
        counts = _activity_counts(scope)
    result.update(_statuses(expectations, counts))
    return result


# Progress --------------------------------------------------------------------


def activity_range(
    start: dt.date, end: dt.date, today: dt.date
) -> tuple[dt.date, dt.date]:
    """Return the part of ``[start, end)`` up to and including ``today``.

    Progress compares activity with the benchmark to date, so that a rep in
    the first week of a quarter is not measured against the whole quarter.
    """
    last = min(end, today + ONE_DAY)
    return start, max(start, last)


def coverage_day(start: dt.date, end: dt.date, today: dt.date) -> dt.date:
    """Return the day whose trailing four quarters give the coverage target.

    It is ``today`` inside the period, the last day of a past period and the
    first day of a future one.
    """
    return min(max(today, start), end - ONE_DAY)


def _win_rate(target: CoverageTarget) -> Decimal | None:
    """Return the win rate behind the target. A fixed ratio R implies 1 / R."""
    if target.win_rate is not None:
        return target.win_rate
    if target.ratio:
        return 1 / target.ratio
    return None


def _attainment_to_pace(
    bookings: Decimal, quota: QuotaFigure | None, elapsed: int, period_days: int
) -> Decimal | None:
    """Return (bookings / quota) / (elapsed / period days) in percent, rounded once."""
    if quota is None or not quota.amount or not elapsed:
        return None
    return percent_of(bookings * period_days, quota.amount * elapsed)


def _one_progress(
    member: Membership,
    *,
    quota: QuotaFigure | None,
    bookings: Decimal,
    open_deals: OpenInPeriod,
    target: CoverageTarget,
    activity: list[ActivityStatus],
    elapsed: int,
    period_days: int,
) -> RepProgress:
    pipeline = cents(open_deals.value)
    coverage = pipeline_coverage(
        quota=quota.amount if quota else ZERO,
        bookings=bookings,
        in_period_pipeline=pipeline,
        win_rate=_win_rate(target),
    )
    return RepProgress(
        member_id=member.pk,
        quota=quota,
        bookings=bookings,
        attainment=percent_of(bookings, quota.amount) if quota else None,
        pace=percent_of(elapsed, period_days),
        attainment_to_pace=_attainment_to_pace(bookings, quota, elapsed, period_days),
        in_period_pipeline=pipeline,
        coverage=coverage,
        coverage_target=target,
        coverage_status=coverage_status(quota, coverage, target),
        forecast=bookings + cents(open_deals.weighted),
        activity=activity,
    )


def progress_from_bookings(
    *,
    organization: Organization,
    members: Iterable[Membership],
    start: dt.date,
    end: dt.date,
    today: dt.date,
    bookings: Mapping[int, Decimal],
    activity_counts_in_period: Mapping[int, Mapping[str, int]] | None = None,
) -> dict[int, RepProgress]:
    """Return ``rep_progress`` for callers that already summed the bookings.

    ``activity_counts_in_period`` (activities per member and type over the
    whole period) is used only when the period has ended by ``today``,
    because only then is the range to date the whole period.
    """
    members = list(members)
    if not members:
        return {}
    member_ids = [member.pk for member in members]
    quotas = member_quotas(members, start, end)
    targets = coverage_targets(organization, members, coverage_day(start, end, today))
    open_deals = open_in_period(member_ids, max(start, today), end)

    activity_start, activity_end = activity_range(start, end, today)
    counts = activity_counts_in_period if activity_end == end else None
    activity = activity_status(
        organization=organization,
        members=members,
        start=activity_start,
        end=activity_end,
        counts=counts,
    )

    period_days = (end - start).days
    elapsed = elapsed_days(start, end, today)
    return {
        member.pk: _one_progress(
            member,
            quota=quotas.get(member.pk),
            bookings=bookings.get(member.pk, ZERO),
            open_deals=open_deals.get(member.pk, OpenInPeriod()),
            target=targets[member.pk],
            activity=activity[member.pk],
            elapsed=elapsed,
            period_days=period_days,
        )
        for member in members
    }


def rep_progress(
    *,
    organization: Organization,
    members: Iterable[Membership],
    start: dt.date,
    end: dt.date,
    today: dt.date,
) -> dict[int, RepProgress]:
    """Return each member's progress towards their bookings quota in ``[start, end)``.

    The number of queries does not depend on the number of members. The
    bookings take three and the quotas up to two. The coverage targets and
    the open pipeline closing in the period take one each, and the activity
    against benchmark up to three.
    """
    members = list(members)
    if not members:
        return {}
    scope = MetricScope(
        [member.pk for member in members], start, end, organization.zoneinfo
    )
    return progress_from_bookings(
        organization=organization,
        members=members,
        start=start,
        end=end,
        today=today,
        bookings=bookings_by_member(scope),
    )


def attach_progress(
    rows: list[RepRow],
    *,
    organization: Organization,
    start: dt.date,
    end: dt.date,
    today: dt.date,
) -> None:
    """Set each row's ``progress`` from the bookings and activities of its card."""
    progress = progress_from_bookings(
        organization=organization,
        members=[row.member for row in rows],
        start=start,
        end=end,
        today=today,
        bookings={row.member.pk: row.card.bookings for row in rows},
        activity_counts_in_period={row.member.pk: row.card.activities for row in rows},
    )
    for row in rows:
        row.progress = progress[row.member.pk]
